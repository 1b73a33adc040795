//! The auth router, in process: every status and error code of API.md.
//! One test binary; a file per concept.

mod support;
mod telemetry;

mod account;
mod bodies;
mod change_email;
mod change_password;
mod cross_site;
mod log_injection;
mod logout;
mod mail_cap;
mod outage;
mod password_reset;
mod refresh;
mod sessions;
mod signin;
mod signup;
mod tokens_in_body;
mod verify_email;
