//! Docs that cannot drift: the manual (`README.md` and `docs/*.md`) checked
//! against itself and against the built binary. Links and the repository
//! paths named resolve, and every page has the same sections (`links`); the flags and `DISCO_*` variables
//! documented are those `--help` lists (`flags`); the metric families
//! documented are those `/metrics` exports (`metrics`). Each test names
//! the page and line, or the flag or metric, that differs.

mod flags;
mod links;
mod manual;
mod metrics;
