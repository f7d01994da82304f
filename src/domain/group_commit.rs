//! Group commit: writes that must each be durable before their caller is
//! answered are queued to one writer, which takes everything queued while
//! it wrote the last transaction and writes it in the next. Concurrent
//! callers then share one transaction and one fsync instead of queueing
//! for one each (the disk's sync, not the rows, bounds such writes).

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::model::error::Error;

/// Why a group was not written, told to every caller in it: the
/// deployment's state it met, if any (a full disk, a database that does
/// not answer: told to the client as such), and the cause for the log.
#[derive(Clone)]
pub struct Unwritten {
    state: Option<fn() -> Error>,
    pub cause: String,
}

impl From<anyhow::Error> for Unwritten {
    fn from(e: anyhow::Error) -> Unwritten {
        let cause = format!("{e:#}");
        let state: Option<fn() -> Error> = match Error::from(e) {
            Error::StorageFull(_) => Some(Error::disk_full),
            Error::Unavailable(_) => Some(Error::unavailable),
            _ => None,
        };
        Unwritten { state, cause }
    }
}

impl Unwritten {
    /// The error a caller is answered with; `what` names the write.
    pub fn into_error(self, what: &str) -> Error {
        self.state.map_or_else(
            || Error::internal(format!("{what}: {}", self.cause)),
            |state| state(),
        )
    }
}

type Job<J, R> = (J, oneshot::Sender<Result<R, Unwritten>>);

/// The writer's handle; the writer stops when the handle is dropped.
pub struct GroupCommit<J, R> {
    tx: mpsc::Sender<Job<J, R>>,
    what: &'static str,
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Starts the writer on the current runtime. A group holds jobs up to
    /// `max_weight` in all (`weight` of each; the first is always taken);
    /// `write` answers each job of a group, in order, or fails them all.
    pub fn start<W, F>(
        what: &'static str,
        weight: fn(&J) -> usize,
        max_weight: usize,
        write: W,
    ) -> Self
    where
        W: Fn(Vec<J>) -> F + Send + 'static,
        F: Future<Output = anyhow::Result<Vec<R>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Job<J, R>>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut total = weight(&first.0);
                let mut group = vec![first];
                while total < max_weight {
                    match rx.try_recv() {
                        Ok(job) => {
                            total += weight(&job.0);
                            group.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let (jobs, answers): (Vec<J>, Vec<_>) = group.into_iter().unzip();
                let n = jobs.len();
                // Its own task: a panic fails this group, not the writer.
                let written = match tokio::spawn(write(jobs)).await {
                    Ok(Ok(results)) if results.len() == n => Ok(results),
                    Ok(Ok(results)) => Err(anyhow::anyhow!(
                        "{n} jobs written, {} results",
                        results.len()
                    )),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(anyhow::Error::new(e).context("the write panicked")),
                };
                match written {
                    Ok(results) => {
                        for (done, r) in answers.into_iter().zip(results) {
                            let _ = done.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        let e = Unwritten::from(e);
                        tracing::error!(error = %e.cause, jobs = n, "{what} could not be written");
                        for done in answers {
                            let _ = done.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        GroupCommit { tx, what }
    }

    /// Returns once `job` is durable, with its result.
    pub async fn submit(&self, job: J) -> crate::model::error::Result<R> {
        let stopped = || Error::internal(format!("the {} writer has stopped", self.what));
        let (done, wait) = oneshot::channel();
        self.tx.send((job, done)).await.map_err(|_| stopped())?;
        wait.await
            .map_err(|_| stopped())?
            .map_err(|e| e.into_error(self.what))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_jobs_share_groups_and_each_gets_its_own_result() {
        let groups = Arc::new(AtomicUsize::new(0));
        let counted = groups.clone();
        let writer = Arc::new(GroupCommit::start(
            "test",
            |_: &u32| 1,
            64,
            move |jobs: Vec<u32>| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::Relaxed);
                    // A slow sync: the next callers queue meanwhile.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok(jobs.into_iter().map(|j| j * 2).collect())
                }
            },
        ));
        let calls: Vec<_> = (0..200u32)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { (i, w.submit(i).await.unwrap()) })
            })
            .collect();
        for c in calls {
            let (i, doubled) = c.await.unwrap();
            assert_eq!(doubled, i * 2);
        }
        let groups = groups.load(Ordering::Relaxed);
        // At most 64 a group: at least 4; sharing: far fewer than 200.
        assert!((4..50).contains(&groups), "{groups} groups");
    }

    #[tokio::test]
    async fn a_panicking_write_fails_its_group_and_the_writer_goes_on() {
        let writer = GroupCommit::start(
            "test",
            |_: &u32| 1,
            1,
            |jobs: Vec<u32>| async move {
                assert!(jobs[0] != 1, "a bug");
                Ok(jobs)
            },
        );
        assert!(matches!(writer.submit(1).await, Err(Error::Internal(_))));
        assert_eq!(writer.submit(2).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_caller_with_the_state_it_met() {
        let writer = GroupCommit::start(
            "test",
            |_: &u32| 1,
            8,
            |_: Vec<u32>| async {
                Err::<Vec<u32>, _>(anyhow::Error::new(std::io::Error::from_raw_os_error(28)))
            },
        );
        let e = writer.submit(1).await.unwrap_err();
        assert!(matches!(e, Error::StorageFull(_)), "{e:?}");
        let writer = GroupCommit::start(
            "test",
            |_: &u32| 1,
            8,
            |_: Vec<u32>| async { Err::<Vec<u32>, _>(anyhow::anyhow!("broken")) },
        );
        let e = writer.submit(1).await.unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }
}
