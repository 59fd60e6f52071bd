//! Tells systemd (a `Type=notify` unit) when the daemon serves and when it
//! stops. Outside systemd (`NOTIFY_SOCKET` unset) nothing happens.
//!
//! Ready means listening, not evaluated: the first evaluation reads the
//! whole period and may outlast a start timeout, and a Prometheus that is
//! down must not fail the unit. `GET /-/ready` tells when figures exist.

pub fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
