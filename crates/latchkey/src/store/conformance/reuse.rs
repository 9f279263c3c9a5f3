//! The refresh-reuse rule, tested once: [`decide_not_current`] is the one function every
//! backend's rotation applies after its atomic "rotate if current" step found nothing to
//! rotate (the per-backend cases in `refresh.rs` check that the backends do apply it).

use time::Duration;
use uuid::Uuid;

use super::fixtures::{family, h, rotate};
use crate::store::{FamilyRecord, NotCurrent, decide_not_current};

/// A fixed instant: the rule is pure, so nothing here reads the wall clock (two readings a
/// few milliseconds apart once turned "exactly 10 s after" into "10.003 s after").
fn base() -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

/// A family rotated once at `rotated_at`: token 1 is the predecessor, token 2 current.
fn rotated_once(rotated_at: time::OffsetDateTime) -> FamilyRecord {
    FamilyRecord {
        current_hash: h(2),
        previous_hash: Some(h(1)),
        generation: 1,
        rotated_at: Some(rotated_at),
        ..family(Uuid::now_v7(), rotated_at)
    }
}

#[test]
fn no_live_family_is_invalid() {
    let f = rotated_once(base());
    assert_eq!(
        decide_not_current(None, &rotate(&f, h(1), h(3), base())),
        NotCurrent::Invalid
    );
}

#[test]
fn the_current_token_that_failed_to_rotate_has_expired_and_revokes_nothing() {
    let f = rotated_once(base());
    let at_expiry = rotate(&f, h(2), h(3), f.token_expires_at);
    assert_eq!(
        decide_not_current(Some(f.clone()), &at_expiry),
        NotCurrent::Invalid
    );
}

#[test]
fn the_predecessor_within_the_interval_is_answered_with_the_current_token() {
    let t = base();
    let f = rotated_once(t);
    for after in [Duration::ZERO, Duration::seconds(10)] {
        let request = rotate(&f, h(1), h(3), t + after);
        assert_eq!(
            decide_not_current(Some(f.clone()), &request),
            NotCurrent::Reissue(f.clone()),
            "{after} after the rotation"
        );
    }
}

#[test]
fn the_predecessor_after_the_interval_is_reuse() {
    let t = base();
    let f = rotated_once(t);
    let request = rotate(&f, h(1), h(3), t + Duration::milliseconds(10_001));
    assert_eq!(
        decide_not_current(Some(f.clone()), &request),
        NotCurrent::Revoke(f)
    );
}

#[test]
fn with_no_interval_the_predecessor_is_reuse_even_in_the_same_millisecond() {
    let f = rotated_once(base());
    let mut request = rotate(&f, h(1), h(3), base());
    request.reuse_interval = Duration::ZERO;
    assert_eq!(
        decide_not_current(Some(f.clone()), &request),
        NotCurrent::Revoke(f)
    );
}

#[test]
fn the_predecessor_is_reuse_once_the_current_token_has_expired() {
    let t = base();
    let mut f = rotated_once(t);
    f.token_expires_at = t + Duration::seconds(5);
    let request = rotate(&f, h(1), h(3), t + Duration::seconds(5));
    assert_eq!(
        decide_not_current(Some(f.clone()), &request),
        NotCurrent::Revoke(f)
    );
}

#[test]
fn an_older_or_unknown_token_is_reuse() {
    let f = FamilyRecord {
        current_hash: h(3),
        previous_hash: Some(h(2)),
        generation: 2,
        ..rotated_once(base())
    };
    for presented in [h(1), h(9)] {
        let request = rotate(&f, presented, h(4), base());
        assert_eq!(
            decide_not_current(Some(f.clone()), &request),
            NotCurrent::Revoke(f.clone())
        );
    }
}

#[test]
fn a_family_never_rotated_has_no_predecessor_to_forgive() {
    let f = family(Uuid::now_v7(), base());
    let request = rotate(&f, h(7), h(3), base());
    assert_eq!(
        decide_not_current(Some(f.clone()), &request),
        NotCurrent::Revoke(f)
    );
}
