//! The one rule for a service a test needs (a MongoDB server, node and the OpenID provider):
//! missing under `CI=true` fails the test; anywhere else the test prints why and passes.

/// Whether this run is CI's (`CI` set, and not empty, `false` or `0`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports that `service`, which `tests` need, is missing for reason `why`: panics under CI,
/// prints `SKIPPED` otherwise (the caller then returns without testing anything).
pub fn service_missing(tests: &str, service: &str, why: &str) {
    assert!(!under_ci(), "{tests} need {service} under CI: {why}");
    eprintln!("SKIPPED ({tests}): {service} is missing: {why}");
}
