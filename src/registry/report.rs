//! Sending a listing through a [`Sink`]: a source's first listing in parts
//! as it is read ([`Update::Part`], then [`Update::Listed`]), so that the
//! snapshot writer indexes one part while the store serves the next; any
//! later listing whole ([`Update::Reset`]), since it replaces what was
//! sent. The backends decide only whether a listing may go in parts.

use super::{Sink, Update};
use crate::model::{Instance, SkyEntry};

/// Instances in each part: a few thousand, so that little is left to build
/// once the last is read (a million instances from etcd: 4.2 → 3.7 s to
/// `/ready`, `bench/cold_start.sh`).
const PART: usize = 8192;

/// One listing on its way to a [`Sink`].
pub struct ListingReport<'s> {
    sink: &'s Sink,
    in_parts: bool,
    /// Instances sent in parts so far.
    parted: usize,
    /// False once a send found the server going away.
    open: bool,
}

impl<'s> ListingReport<'s> {
    /// A listing sent in parts (`in_parts`: the source has sent nothing
    /// yet, and its entries need no step over the whole listing), or whole.
    pub fn new(sink: &'s Sink, in_parts: bool) -> Self {
        ListingReport {
            sink,
            in_parts,
            parted: 0,
            open: true,
        }
    }

    /// Sends what `instances` hold as a part, once they are enough and this
    /// listing goes in parts; call it as they are read.
    pub fn offer(&mut self, instances: &mut Vec<Instance>) {
        if self.in_parts && instances.len() >= PART {
            self.parted += instances.len();
            let part = std::mem::replace(instances, Vec::with_capacity(PART));
            self.open &= self.sink.send(Update::Part(part));
        }
    }

    /// Whether a part was sent: the source has then reported entries, and
    /// its next listing must replace them.
    pub fn sent_parts(&self) -> bool {
        self.parted > 0
    }

    /// Whether the server still listens.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Instances the listing held, the parts sent and `rest` together.
    pub fn count(&self, rest: &[Instance]) -> usize {
        self.parted + rest.len()
    }

    /// Ends the listing with the instances not sent yet, after how many
    /// entries were `skipped`; false once the server is going away.
    pub fn finish(self, skipped: u64, rest: Vec<Instance>) -> bool {
        let last = if self.in_parts {
            let count = self.count(&rest);
            vec![Update::Part(rest), Update::Listed { count }]
        } else {
            vec![Update::Reset(rest)]
        };
        self.send_last(skipped, last)
    }

    /// Ends a listing of SkyDNS entries, always sent whole.
    pub fn finish_records(self, skipped: u64, records: Vec<SkyEntry>) -> bool {
        self.send_last(skipped, vec![Update::ResetRecords(records)])
    }

    fn send_last(self, skipped: u64, last: Vec<Update>) -> bool {
        // Skipped first: once the listing shows as synced, its skips are
        // counted too.
        self.open
            && (skipped == 0 || self.sink.send(Update::Skipped { count: skipped }))
            && last.into_iter().all(|update| self.sink.send(update))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_native;
    use tokio::sync::mpsc;

    fn instances(n: usize) -> Vec<Instance> {
        (0..n)
            .map(|i| {
                let value = format!(r#"{{"address": "10.1.{}.{}"}}"#, i / 256, i % 256);
                parse_native("web", &format!("web-{i}"), value.as_bytes()).unwrap()
            })
            .collect()
    }

    /// What reached the sink, a word per update.
    fn sent(events: &mut mpsc::UnboundedReceiver<super::super::SourceEvent>) -> Vec<String> {
        std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| match event.update {
                Update::Part(part) => format!("part {}", part.len()),
                Update::Listed { count } => format!("listed {count}"),
                Update::Reset(all) => format!("reset {}", all.len()),
                Update::Skipped { count } => format!("skipped {count}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_first_listing_goes_in_parts_as_it_is_read_and_a_later_one_whole() {
        let (events, mut received) = mpsc::unbounded_channel();
        let sink = Sink::new(0, events);
        let mut report = ListingReport::new(&sink, true);
        let mut read = Vec::new();
        for instance in instances(PART + 10) {
            read.push(instance);
            report.offer(&mut read);
        }
        assert!(report.sent_parts());
        assert_eq!(report.count(&read), PART + 10);
        assert!(report.finish(2, read));
        let expected = [
            format!("part {PART}"),
            "skipped 2".into(),
            "part 10".into(),
            format!("listed {}", PART + 10),
        ];
        assert_eq!(sent(&mut received), expected);

        let mut report = ListingReport::new(&sink, false);
        let mut read = instances(PART + 10);
        report.offer(&mut read);
        assert!(!report.sent_parts());
        assert!(report.finish(0, read));
        assert_eq!(sent(&mut received), [format!("reset {}", PART + 10)]);
    }
}
