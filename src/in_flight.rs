//! "One request in flight": an actor that polls or fetches on a timer must not start a second
//! request while the first has not answered (a slow peer would otherwise pile them up). The
//! flag is set when a request starts and cleared in its answer's handler.

/// Whether an actor's request of one kind is in flight.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InFlight(bool);

impl InFlight {
    /// Starts a request: `false` (and nothing changes) when one is already in flight.
    #[must_use]
    pub fn start(&mut self) -> bool {
        !std::mem::replace(&mut self.0, true)
    }

    /// The request answered (or failed): the next one may start.
    pub fn end(&mut self) {
        self.0 = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time() {
        let mut flight = InFlight::default();
        assert!(flight.start());
        assert!(!flight.start(), "a second request waits");
        flight.end();
        assert!(flight.start());
    }
}
