//! Who may do what with a file: one pure function of the caller (verified token claims), the
//! file's owner and the caller's share.
//!
//! | action | owner | shared for write | shared for read | role `admin` | anyone else |
//! |---|---|---|---|---|---|
//! | read (`GET /files/{id}`) | yes | yes | yes | yes | 404 |
//! | write (`PUT /files/{id}`) | yes | yes | 403 | yes | 404 |
//! | delete (`DELETE /files/{id}`) | yes | 403 | 403 | yes | 404 |
//! | share (`POST /files/{id}/shares`) | yes | 403 | 403 | 403 | 404 |
//!
//! A file the caller may not see at all answers 404, exactly like a file that does not exist,
//! so ids cannot be probed; a file the caller can see but not change answers 403.

/// A share's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// May read.
    Read,
    /// May read and replace the content.
    Write,
}

impl Permission {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Parses the wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub id: String,
    /// Whether the token carries role `admin`.
    pub admin: bool,
}

/// What the caller wants to do with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read it.
    Read,
    /// Replace its content.
    Write,
    /// Delete it.
    Delete,
    /// Share it with someone.
    Share,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// The caller can see the file but may not do this: 403.
    Forbidden,
    /// The caller may not know the file exists: 404.
    Hidden,
}

/// Decides whether `caller` may perform `action` on a file owned by `owner`, which is shared
/// with the caller as `share` (if at all).
#[must_use]
pub fn decide(caller: &Caller, owner: &str, share: Option<Permission>, action: Action) -> Decision {
    let owns = caller.id == owner;
    if !(owns || share.is_some() || caller.admin) {
        return Decision::Hidden;
    }
    let allowed = match action {
        Action::Read => true,
        Action::Write => owns || caller.admin || share == Some(Permission::Write),
        Action::Delete => owns || caller.admin,
        Action::Share => owns,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Forbidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Delete, Read, Share, Write};
    use Decision::{Allow, Forbidden, Hidden};

    fn caller(id: &str, admin: bool) -> Caller {
        Caller {
            id: id.into(),
            admin,
        }
    }

    #[test]
    fn the_table_in_the_module_docs_holds() {
        let rows: [(Caller, Option<Permission>, [Decision; 4]); 5] = [
            (caller("owner", false), None, [Allow, Allow, Allow, Allow]),
            (
                caller("w", false),
                Some(Permission::Write),
                [Allow, Allow, Forbidden, Forbidden],
            ),
            (
                caller("r", false),
                Some(Permission::Read),
                [Allow, Forbidden, Forbidden, Forbidden],
            ),
            (caller("boss", true), None, [Allow, Allow, Allow, Forbidden]),
            (
                caller("stranger", false),
                None,
                [Hidden, Hidden, Hidden, Hidden],
            ),
        ];
        for (who, share, expected) in rows {
            for (action, want) in [Read, Write, Delete, Share].into_iter().zip(expected) {
                assert_eq!(
                    decide(&who, "owner", share, action),
                    want,
                    "{who:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn permissions_round_trip_and_unknown_ones_are_refused() {
        for p in [Permission::Read, Permission::Write] {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("admin"), None);
    }
}
