//! Runs the phases host by host: each host goes through its phases in order without waiting for
//! slower hosts, except where a phase needs another phase finished on every host first (its
//! `after_all`: etcd needs every member's certificates, init needs a healthy etcd, joins need
//! init, the pod network needs every node's pod CIDR). The storage and database hosts therefore
//! work while the control plane comes up, and a re-run's checks never queue behind the slowest host.
//!
//! What the runner promised before still holds: a host that fails drops out of its later phases;
//! a failure in a critical phase starts nothing later in the list, on any host; serial phases (the
//! control-plane joins) go one host at a time in inventory order and stop after a failure; every
//! outcome is journaled the moment it is known; a stop request starts nothing new, and what still
//! runs when the grace period ends is given up and reported as such.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use super::apply::{ApplyProgress, HostOutcome, HostPhase, PhaseReport, one_line};
use super::interrupt::Stop;
use crate::phases::{Cluster, ErrorKind, Phase, Scope};
use crate::state::{Journal, JournalEntry, PhaseStatus, journal};

pub(super) struct Run<'a> {
    pub cluster: &'a Cluster,
    /// The selected phases, in list order.
    pub phases: Vec<&'static Phase>,
    /// Hosts already out of the run (connect failed), with the phase that put them out.
    pub out: BTreeMap<String, String>,
    pub journal: Option<&'a Mutex<Journal>>,
    pub progress: &'a dyn ApplyProgress,
    pub stop: &'a Stop,
}

pub(super) struct Finished {
    pub phases: Vec<PhaseReport>,
    /// Why later phases did not start (a critical phase failed), if so.
    pub stopped: Option<String>,
    pub journal_error: Option<journal::JournalError>,
}

#[derive(Default)]
struct Board {
    results: BTreeMap<(usize, String), HostPhase>,
    started: BTreeMap<usize, Instant>,
    ended: BTreeMap<usize, Instant>,
    /// What runs now, since when.
    running: BTreeMap<(usize, String), Instant>,
    /// host -> the phase it failed in.
    failed: BTreeMap<String, String>,
    /// The first critical phase that failed: its list index, name and hosts.
    critical: Option<(usize, String, Vec<String>)>,
    journal_error: Option<journal::JournalError>,
}

impl Run<'_> {
    fn hosts(&self, i: usize) -> Vec<String> {
        let phase = self.phases[i];
        let hosts = self.cluster.hosts_for(phase.scope);
        if hosts.is_empty() && phase.scope == Scope::Controller { vec![] } else { hosts }
    }

    pub async fn go(self) -> Finished {
        let hosts: Vec<Vec<String>> = (0..self.phases.len()).map(|i| self.hosts(i)).collect();
        let board = Mutex::new(Board { failed: self.out.clone(), ..Default::default() });
        let changed = tokio::sync::Notify::new();
        let everyone: BTreeSet<String> = hosts.iter().flatten().cloned().collect();
        let ctx = Ctx { run: &self, hosts: &hosts, board: &board, changed: &changed };
        let pipelines = futures::future::join_all(everyone.iter().map(|h| ctx.pipeline(h)));
        tokio::select! {
            _ = pipelines => {}
            _ = self.stop.grace_over() => ctx.give_up(),
        }
        let mut b = board.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut reports = Vec::new();
        for (i, phase) in self.phases.iter().enumerate() {
            if hosts[i].is_empty() {
                continue;
            }
            let results: Vec<HostPhase> = hosts[i]
                .iter()
                .map(|h| {
                    b.results.remove(&(i, h.clone())).unwrap_or_else(|| HostPhase {
                        host: h.clone(),
                        outcome: HostOutcome::Skipped { reason: "not started".into() },
                        took_ms: 0,
                        done_before: false,
                    })
                })
                .collect();
            let took_ms = match (b.started.get(&i), b.ended.get(&i)) {
                (Some(s), Some(e)) => e.saturating_duration_since(*s).as_millis() as u64,
                _ => 0,
            };
            reports.push(PhaseReport { name: phase.name.into(), hosts: results, took_ms });
        }
        let stopped = b.critical.as_ref().map(|(_, name, failed)| {
            format!(
                "phase {name} failed on {}: the phases after it need it on every host; fix it and run the same command again (it resumes)",
                failed.join(", ")
            )
        });
        Finished { phases: reports, stopped, journal_error: b.journal_error.take() }
    }
}

struct Ctx<'a> {
    run: &'a Run<'a>,
    hosts: &'a [Vec<String>],
    board: &'a Mutex<Board>,
    changed: &'a tokio::sync::Notify,
}

impl Ctx<'_> {
    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `ready` holds on the board (checked again whenever a result lands).
    async fn wait_until(&self, ready: impl Fn(&Board) -> bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(&self.board()) {
                return;
            }
            notified.await;
        }
    }

    /// One host through every selected phase that concerns it, in order.
    async fn pipeline(&self, host: &str) {
        for (i, phase) in self.run.phases.iter().enumerate() {
            let Some(pos) = self.hosts[i].iter().position(|h| h == host) else { continue };
            let needs: Vec<usize> = (0..i)
                .filter(|&j| self.run.phases[j].gate || phase.after_all.contains(&self.run.phases[j].name))
                .collect();
            let previous = (phase.serial && pos > 0).then(|| self.hosts[i][pos - 1].clone());
            self.wait_until(|b| {
                needs.iter().all(|&j| self.hosts[j].iter().all(|h| b.results.contains_key(&(j, h.clone()))))
                    && previous.as_ref().is_none_or(|p| b.results.contains_key(&(i, p.clone())))
            })
            .await;
            let skip = {
                let b = self.board();
                if let Some(why) = self.run.stop.requested() {
                    Some(format!("interrupted ({why}) before it started"))
                } else if let Some((_, name, _)) = b.critical.as_ref().filter(|(j, _, _)| *j < i) {
                    Some(format!("the run stopped after {name} failed"))
                } else if let Some(p) = b.failed.get(host) {
                    Some(format!("failed in {p}"))
                } else if let Some(p) = previous.as_ref().filter(|p| {
                    matches!(
                        b.results.get(&(i, (*p).clone())).map(|r| &r.outcome),
                        Some(HostOutcome::Failed { .. } | HostOutcome::Skipped { .. })
                    )
                }) {
                    Some(format!("{p} did not finish {} before it, so the rest wait", phase.name))
                } else if !self.run.cluster.nodes.contains_key(host) {
                    Some("not connected".into())
                } else {
                    None
                }
            };
            let done_before =
                self.run.journal.is_some_and(|j| j.lock().unwrap_or_else(|p| p.into_inner()).is_done(phase.name, host));
            let start = Instant::now();
            let outcome = match skip {
                Some(reason) => HostOutcome::Skipped { reason },
                None => {
                    self.begin(i, host);
                    let node = &self.run.cluster.nodes[host];
                    match node.with_recovery(|| (phase.run)(self.run.cluster, node)).await {
                        Ok(changes) => HostOutcome::Ok { changes, notes: node.take_notes() },
                        Err(e) => HostOutcome::Failed { error: one_line(&e.0), kind: e.kind() },
                    }
                }
            };
            let took_ms = start.elapsed().as_millis() as u64;
            self.finish(i, HostPhase { host: host.to_string(), outcome, took_ms, done_before });
        }
    }

    fn begin(&self, i: usize, host: &str) {
        let first = {
            let mut b = self.board();
            b.running.insert((i, host.to_string()), Instant::now());
            let first = !b.started.contains_key(&i);
            b.started.entry(i).or_insert_with(Instant::now);
            first
        };
        if first {
            let phase = self.run.phases[i];
            self.run.progress.phase_started(phase.name, phase.about, self.hosts[i].len());
        }
    }

    /// Records one host's outcome: journal, board, progress, and wakes whoever waits on it.
    fn finish(&self, i: usize, result: HostPhase) {
        let phase = self.run.phases[i];
        let journal_error = self.record(phase.name, &result).err();
        super::apply::log_outcome(phase.name, &result.host, &result.outcome, result.took_ms);
        self.run.progress.host_finished(phase.name, &result.host, &result.outcome);
        let last = {
            let mut b = self.board();
            b.running.remove(&(i, result.host.clone()));
            if let Some(e) = journal_error {
                b.journal_error.get_or_insert(e);
            }
            // A host a one-at-a-time phase stopped before is out too (a master that was not joined).
            let stopped_before = phase.serial && matches!(result.outcome, HostOutcome::Skipped { .. });
            if stopped_before {
                b.failed.entry(result.host.clone()).or_insert_with(|| phase.name.to_string());
            }
            if let HostOutcome::Failed { .. } = result.outcome {
                b.failed.entry(result.host.clone()).or_insert_with(|| phase.name.to_string());
                if phase.critical {
                    match &mut b.critical {
                        Some((j, _, hosts)) if *j == i => hosts.push(result.host.clone()),
                        Some(_) => {}
                        None => b.critical = Some((i, phase.name.to_string(), vec![result.host.clone()])),
                    }
                }
            }
            b.results.insert((i, result.host.clone()), result);
            let last = self.hosts[i].iter().all(|h| b.results.contains_key(&(i, h.clone())));
            if last {
                b.ended.insert(i, Instant::now());
                b.started.entry(i).or_insert_with(Instant::now);
            }
            last.then(|| PhaseReport {
                name: phase.name.into(),
                hosts: self.hosts[i].iter().filter_map(|h| b.results.get(&(i, h.clone())).cloned()).collect(),
                took_ms: b.ended[&i].saturating_duration_since(b.started[&i]).as_millis() as u64,
            })
        };
        if let Some(report) = last {
            self.run.progress.phase_finished(&report);
        }
        self.changed.notify_waiters();
    }

    fn record(&self, phase: &str, r: &HostPhase) -> Result<(), journal::JournalError> {
        let Some(j) = self.run.journal else { return Ok(()) };
        let (status, changes, error) = match &r.outcome {
            HostOutcome::Ok { changes, .. } => (PhaseStatus::Done, changes.len(), None),
            HostOutcome::Failed { error, .. } => (PhaseStatus::Failed, 0, Some(error.clone())),
            HostOutcome::Skipped { .. } => return Ok(()),
        };
        let entry = JournalEntry { status, at: journal::now_secs(), took_ms: r.took_ms, changes, error };
        j.lock().unwrap_or_else(|p| p.into_inner()).record(phase, &r.host, entry)
    }

    /// The grace period is over: what still runs is given up (its futures are dropped by the
    /// caller), and reported and journaled as such.
    fn give_up(&self) {
        let running: Vec<((usize, String), Instant)> =
            self.board().running.iter().map(|(k, t)| (k.clone(), *t)).collect();
        for ((i, host), since) in running {
            let error = format!(
                "interrupted: still running {} s after the stop was asked, given up (the step is idempotent: the \
                 next apply verifies it and finishes it)",
                self.run.stop.grace.as_secs()
            );
            let outcome = HostOutcome::Failed { error, kind: ErrorKind::Timeout };
            let took_ms = since.elapsed().as_millis() as u64;
            self.finish(i, HostPhase { host, outcome, took_ms, done_before: false });
        }
    }
}
