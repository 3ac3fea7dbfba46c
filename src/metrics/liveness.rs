//! The watches' liveness on `/metrics`, one family a line of evidence: the
//! position each registry's watch is proved current at, the ages of its
//! last event and proof, the lag a proof found, and resyncs by cause.

use std::fmt::Write;
use std::time::SystemTime;

use super::label_value;
use crate::registry::{ResyncCause, SourceStatus};

/// The watches' liveness, per registry: position, ages, lag, resyncs.
pub(super) fn render(out: &mut String, sources: &[SourceStatus], now: SystemTime) {
    let seconds_since = |at: Option<SystemTime>| {
        at.and_then(|at| now.duration_since(at).ok())
            .map(|d| d.as_secs_f64())
    };
    out.push_str("# HELP disco_registry_position The store position the watch is proved current at (etcd revision, ZooKeeper zxid of the root).\n");
    out.push_str("# TYPE disco_registry_position gauge\n");
    for source in sources {
        if let Some(position) = source.position {
            let _ = writeln!(
                out,
                "disco_registry_position{{registry=\"{}\"}} {position}",
                label_value(&source.name)
            );
        }
    }
    out.push_str("# HELP disco_registry_seconds_since_event Seconds since the watch last delivered a change.\n");
    out.push_str("# TYPE disco_registry_seconds_since_event gauge\n");
    for source in sources {
        if let Some(age) = seconds_since(source.last_event) {
            let _ = writeln!(
                out,
                "disco_registry_seconds_since_event{{registry=\"{}\"}} {age}",
                label_value(&source.name)
            );
        }
    }
    out.push_str("# HELP disco_registry_seconds_since_proof Seconds since the watch was last proved current (or listed).\n");
    out.push_str("# TYPE disco_registry_seconds_since_proof gauge\n");
    for source in sources {
        if let Some(age) = seconds_since(source.last_proof) {
            let _ = writeln!(
                out,
                "disco_registry_seconds_since_proof{{registry=\"{}\"}} {age}",
                label_value(&source.name)
            );
        }
    }
    out.push_str("# HELP disco_registry_lag How far behind the store the last proof found the watch, in revisions or zxids (0: current).\n");
    out.push_str("# TYPE disco_registry_lag gauge\n");
    for source in sources {
        let _ = writeln!(
            out,
            "disco_registry_lag{{registry=\"{}\"}} {}",
            label_value(&source.name),
            source.lag
        );
    }
    out.push_str("# HELP disco_registry_resyncs_total Fresh listings after the first, by cause.\n");
    out.push_str("# TYPE disco_registry_resyncs_total counter\n");
    for source in sources {
        for cause in ResyncCause::ALL {
            let _ = writeln!(
                out,
                "disco_registry_resyncs_total{{registry=\"{}\",cause=\"{}\"}} {}",
                label_value(&source.name),
                cause.as_str(),
                source.resyncs(cause)
            );
        }
    }
}
