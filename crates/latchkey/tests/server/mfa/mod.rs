//! Two-factor authentication: TOTP enrolment and recovery codes, logins that wait for their
//! second factor, replay and throttling, removal, the admin reset, and the `amr` / `auth_time`
//! claims that step-up checks read. Codes are computed here, from RFC 6238 (HMAC-SHA-1 on the
//! time step, dynamic truncation), not with the server's TOTP library.

mod enrol;
mod helpers;
mod login;
mod manage;
