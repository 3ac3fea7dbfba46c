//! Any text as `/etc/resolv.conf`, as `disco wait` reads it
//! ([`crate::dns::ask::ResolvConf`]), and any name completed with it: no
//! panic, ndots bounded, every completion a name of the one given.

use crate::dns::ask::ResolvConf;

/// The target's body.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (conf, name) = match text.split_once('\0') {
        Some((conf, name)) => (conf, name),
        None => (text.as_ref(), "db"),
    };
    let conf = ResolvConf::parse(conf);
    assert!(conf.ndots <= 15);
    let candidates = conf.candidates(name);
    assert!(!candidates.is_empty());
    let bare = name.strip_suffix('.').unwrap_or(name);
    assert!(candidates.iter().all(|c| c.starts_with(bare)));
}
