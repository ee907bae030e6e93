//! Optimistic retries: read, decide, write conditionally; on a lost race read again.
//!
//! Every read-modify-write loop of the domain goes through [`optimistic`]: a bounded number of
//! attempts with a short randomized backoff between them (so racing writers spread out), and
//! one error when they all lose.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{ApiError, ApiResult};
use crate::store::StoreError;

/// Attempts before giving up with 409.
pub const ATTEMPTS: u32 = 8;

/// What one attempt did.
pub enum Step<T> {
    Done(T),
    /// Lost a race (a conditional write failed): read again and retry.
    Again,
}

impl<T> Step<T> {
    pub fn is_again(&self) -> bool {
        matches!(self, Step::Again)
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Done(t) => Step::Done(f(t)),
            Step::Again => Step::Again,
        }
    }
}

/// Runs `attempt` until it is done, at most [`ATTEMPTS`] times; `what` names the thing being
/// changed in the 409 that ends a losing streak.
pub async fn optimistic<T, F, Fut>(what: &str, mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<Step<T>>>,
{
    for n in 0..ATTEMPTS {
        match attempt().await? {
            Step::Done(t) => return Ok(t),
            Step::Again => backoff(n).await,
        }
    }
    Err(conflict(what))
}

/// The 409 of a losing streak.
pub fn conflict(what: &str) -> ApiError {
    ApiError::Conflict(format!("{what} is being changed by other requests; re-read and retry"))
}

/// A write's result as a step: a failed condition is [`Step::Again`].
pub fn again_on_conflict<T>(r: Result<T, StoreError>) -> ApiResult<Step<T>> {
    match r {
        Ok(t) => Ok(Step::Done(t)),
        Err(StoreError::Conflict { .. }) => Ok(Step::Again),
        Err(e) => Err(e.into()),
    }
}

/// Nothing the first time; then up to 1, 2, 4 ... ms (capped at 16), randomized.
pub async fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let cap = 1u64 << attempt.min(4);
    let ms = rand::rng().random_range(0..=cap);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    } else {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_until_done_and_gives_up_with_409() {
        let n = AtomicU32::new(0);
        let v = optimistic("thing", || async {
            Ok(if n.fetch_add(1, Ordering::Relaxed) < 3 { Step::Again } else { Step::Done(7) })
        })
        .await
        .unwrap();
        assert_eq!((v, n.load(Ordering::Relaxed)), (7, 4));
        let e = optimistic::<(), _, _>("thing", || async { Ok(Step::Again) }).await.unwrap_err();
        assert!(matches!(e, ApiError::Conflict(m) if m.contains("thing")));
    }
}
