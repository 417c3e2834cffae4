//! A daemon endpoint found silent by a probe.
//!
//! A stopped or stuck daemon accepts connections and never answers, so each
//! call would wait out its own deadline. A probe with a short deadline marks
//! the endpoint silent; calls racing [`Silence::marked`] then end at once,
//! those in flight included.

use std::time::Duration;

use tokio::sync::watch;

/// Whether an endpoint was found silent, and by a probe of what deadline.
#[derive(Debug)]
pub struct Silence(watch::Sender<Option<Duration>>);

impl Default for Silence {
    fn default() -> Self {
        Self(watch::Sender::new(None))
    }
}

impl Silence {
    /// Marks the endpoint silent: a probe got no answer within `probe`.
    pub fn mark(&self, probe: Duration) {
        self.0.send_replace(Some(probe));
    }

    /// The probe's deadline, once the endpoint was marked silent.
    pub fn probe(&self) -> Option<Duration> {
        *self.0.borrow()
    }

    /// Resolves with the probe's deadline once the endpoint is marked
    /// silent; at once when it already is.
    pub async fn marked(&self) -> Duration {
        let mut marks = self.0.subscribe();
        let mark = marks
            .wait_for(Option::is_some)
            .await
            .expect("the sender lives in self");
        mark.expect("waited for a mark")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_end_when_marked_and_later_ones_at_once() {
        let silence = Silence::default();
        assert_eq!(silence.probe(), None);
        let waiting = async {
            tokio::time::timeout(Duration::from_secs(5), silence.marked())
                .await
                .expect("the mark ends the wait")
        };
        let marking = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            silence.mark(Duration::from_secs(3));
        };
        let (waited, ()) = tokio::join!(waiting, marking);
        assert_eq!(waited, Duration::from_secs(3));
        assert_eq!(silence.probe(), Some(Duration::from_secs(3)));
        let later = tokio::time::timeout(Duration::from_millis(10), silence.marked()).await;
        assert_eq!(later.ok(), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn an_unmarked_endpoint_is_never_waited_out() {
        let silence = Silence::default();
        let waited = tokio::time::timeout(Duration::from_millis(50), silence.marked()).await;
        assert!(waited.is_err());
    }
}
