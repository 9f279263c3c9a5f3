//! Operability: the client address behind trusted proxies (throttling, the `ip` of logins),
//! request ids, JSON logs of the real binary, and `latchkey doctor` on good and bad
//! configurations.

mod client_address;
mod doctor;
mod request_id;
