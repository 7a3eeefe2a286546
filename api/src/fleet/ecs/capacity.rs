//! `ECS_CAPACITY_PROVIDER_STRATEGY`: where worker tasks run when not on the plain Fargate launch
//! type, e.g. mostly Fargate Spot with a Fargate base (`FARGATE:1:1,FARGATE_SPOT:3`). A task a
//! Spot interruption stops costs its job no attempt (`fleet.rs`, `spot_interruption`).

use aws_sdk_ecs::types::CapacityProviderStrategyItem;

/// ECS's limits on a strategy (RunTask `capacityProviderStrategy`).
const MAX_PROVIDERS: usize = 6;
const MAX_WEIGHT: i32 = 1000;
const MAX_BASE: i32 = 100_000;

/// One provider of a strategy: `NAME[:WEIGHT[:BASE]]` (weight 1 and base 0 when left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityItem {
    pub provider: String,
    /// This provider's share of the tasks beyond the bases.
    pub weight: i32,
    /// Tasks that run on this provider first (one provider of a strategy at most).
    pub base: i32,
}

/// Parses a comma-separated strategy, checked against ECS's rules so a bad value is refused at
/// start rather than by every `RunTask`.
pub fn parse_strategy(value: &str) -> Result<Vec<CapacityItem>, String> {
    let mut items: Vec<CapacityItem> = Vec::new();
    for entry in value.split(',').map(str::trim) {
        let mut fields = entry.split(':').map(str::trim);
        let provider = fields.next().unwrap_or_default();
        if provider.is_empty()
            || provider.len() > 255
            || !provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "{entry:?}: expected NAME[:WEIGHT[:BASE]], NAME letters, digits, '-' or '_' \
                 (e.g. FARGATE:1:1,FARGATE_SPOT:3)"
            ));
        }
        let mut number = |what: &str, default: i32, max: i32| match fields.next() {
            None => Ok(default),
            Some(s) => s
                .parse::<i32>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| format!("{entry:?}: the {what} must be a whole number 0-{max}")),
        };
        let weight = number("weight", 1, MAX_WEIGHT)?;
        let base = number("base", 0, MAX_BASE)?;
        if fields.next().is_some() {
            return Err(format!(
                "{entry:?}: expected NAME[:WEIGHT[:BASE]], found more fields"
            ));
        }
        if items.iter().any(|i| i.provider == provider) {
            return Err(format!("{provider} is listed twice"));
        }
        items.push(CapacityItem {
            provider: provider.to_owned(),
            weight,
            base,
        });
    }
    if items.len() > MAX_PROVIDERS {
        return Err(format!(
            "at most {MAX_PROVIDERS} capacity providers, found {}",
            items.len()
        ));
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        return Err("only one capacity provider may have a base".into());
    }
    if items.iter().all(|i| i.weight == 0) {
        return Err("at least one capacity provider needs a weight above 0".into());
    }
    Ok(items)
}

/// The strategy as `RunTask` takes it.
pub fn to_sdk(
    items: &[CapacityItem],
) -> Result<Vec<CapacityProviderStrategyItem>, aws_sdk_ecs::error::BuildError> {
    items
        .iter()
        .map(|i| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(&i.provider)
                .weight(i.weight)
                .base(i.base)
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(provider: &str, weight: i32, base: i32) -> CapacityItem {
        CapacityItem {
            provider: provider.into(),
            weight,
            base,
        }
    }

    #[test]
    fn a_spot_strategy_with_a_fargate_base_is_read_with_ecs_defaults() {
        assert_eq!(
            parse_strategy("FARGATE:1:1, FARGATE_SPOT:3").unwrap(),
            [item("FARGATE", 1, 1), item("FARGATE_SPOT", 3, 0)]
        );
        assert_eq!(
            parse_strategy("FARGATE_SPOT").unwrap(),
            [item("FARGATE_SPOT", 1, 0)]
        );
    }

    #[test]
    fn strategies_ecs_would_refuse_are_refused_with_the_reason() {
        for (value, reason) in [
            ("FARGATE:1:1,FARGATE_SPOT:3:2", "only one capacity provider"),
            ("FARGATE:0,FARGATE_SPOT:0", "weight above 0"),
            ("FARGATE,FARGATE", "listed twice"),
            ("FARGATE:1001", "weight must be a whole number 0-1000"),
            ("FARGATE:-1", "weight must be a whole number"),
            ("FARGATE:1:x", "base must be a whole number"),
            ("FARGATE:1:1:1", "more fields"),
            ("FARGATE,", "expected NAME"),
            ("FAR GATE", "expected NAME"),
            ("a,b,c,d,e,f,g", "at most 6"),
        ] {
            let err = parse_strategy(value).unwrap_err();
            assert!(err.contains(reason), "{value:?}: {err}");
        }
    }

    #[test]
    fn the_sdk_items_carry_every_field() {
        let sdk = to_sdk(&[item("FARGATE", 1, 1), item("FARGATE_SPOT", 3, 0)]).unwrap();
        assert_eq!(sdk[0].capacity_provider(), "FARGATE");
        assert_eq!((sdk[0].weight(), sdk[0].base()), (1, 1));
        assert_eq!(sdk[1].capacity_provider(), "FARGATE_SPOT");
        assert_eq!((sdk[1].weight(), sdk[1].base()), (3, 0));
    }
}
