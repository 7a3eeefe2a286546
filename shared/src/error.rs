//! Keeping an error's cause: [`Cause`] holds the underlying error as a variant's `#[source]`
//! (cheap to clone, so errors that cross tasks stay `Clone`), and [`chain`] renders an error with
//! every cause below it, for logs and for messages people read.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error underneath another; shown through `source()`, never flattened into a string.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    pub fn new(e: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(e))
    }

    /// A cause that is only a message (nothing underneath it).
    pub fn msg(message: impl Into<String>) -> Self {
        #[derive(Debug)]
        struct Message(String);
        impl fmt::Display for Message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Error for Message {}
        Self::new(Message(message.into()))
    }

    /// The underlying error, to look for a particular kind.
    pub fn get(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// `is_permanent`, `unavailable` and `backend` for a store's error enum, which has
/// `Unavailable { context, source }` (retrying may help) and `Backend { context, source }`
/// (it will not) variants whose `source` is an `Option<Cause>`.
#[macro_export]
macro_rules! store_error_constructors {
    ($error:ident) => {
        impl $error {
            /// Whether retrying the same call cannot help.
            pub fn is_permanent(&self) -> bool {
                !matches!(self, $error::Unavailable { .. })
            }

            /// The store could not be reached doing `context`; retrying may help.
            pub fn unavailable(
                context: impl Into<String>,
                source: impl std::error::Error + Send + Sync + 'static,
            ) -> Self {
                Self::Unavailable {
                    context: context.into(),
                    source: Some($crate::error::Cause::new(source)),
                }
            }

            /// The store failed doing `context`; retrying will not help.
            pub fn backend(
                context: impl Into<String>,
                source: impl std::error::Error + Send + Sync + 'static,
            ) -> Self {
                Self::Backend {
                    context: context.into(),
                    source: Some($crate::error::Cause::new(source)),
                }
            }
        }
    };
}

/// `error: cause: cause of the cause`, skipping a cause whose text its parent already shows.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("store unavailable: read job 7")]
        Unavailable {
            #[source]
            source: Cause,
        },
    }

    #[test]
    fn the_cause_is_kept_and_rendered_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Outer::Unavailable {
            source: Cause::new(io),
        };
        let src = e.source().unwrap();
        assert_eq!(src.to_string(), "connection refused");
        assert!(
            src.downcast_ref::<Cause>()
                .unwrap()
                .get()
                .downcast_ref::<std::io::Error>()
                .is_some()
        );
        assert_eq!(
            chain(&e),
            "store unavailable: read job 7: connection refused"
        );
        let msg = Outer::Unavailable {
            source: Cause::msg("no stable answer"),
        };
        assert_eq!(
            chain(&msg),
            "store unavailable: read job 7: no stable answer"
        );
    }
}
