pub mod fake_ecs;
