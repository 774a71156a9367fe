//! Results of AWS calls made once per investigation and shared by every caller, failures
//! included, so that two evidence methods needing the same IAM record make one call.
//!
//! A `LiveEvidence` serves one investigation, so a record kept here is as fresh as the
//! investigation. Only the live source uses the memo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Results by name, such as an access key ID or a user name, each computed once.
pub(super) struct Memo<T> {
    cells: Mutex<HashMap<String, Arc<OnceCell<T>>>>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Memo<T> {
    /// Returns the result for `name`, running `compute` when no caller has run it yet.
    /// Concurrent callers wait for the first one's result. A caller dropped while its
    /// `compute` runs leaves the next caller to run it again.
    pub(super) async fn get_or_compute<F, Fut>(&self, name: &str, compute: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(cells.entry(name.to_string()).or_default())
        };
        cell.get_or_init(compute).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let memo: Memo<Result<u32, String>> = Memo::default();
        let runs = AtomicUsize::new(0);
        let compute = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Err::<u32, String>("denied".to_string())
        };

        let (first, second) = tokio::join!(memo.get_or_compute("AKIA1", compute), memo.get_or_compute("AKIA1", compute));
        let other = memo.get_or_compute("AKIA2", || async { Ok(7) }).await;

        assert_eq!(runs.load(Ordering::SeqCst), 1, "the failure is shared too");
        assert_eq!(first, Err("denied".to_string()));
        assert_eq!(second, first);
        assert_eq!(other, Ok(7));
    }
}
