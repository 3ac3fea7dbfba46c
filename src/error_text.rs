//! Errors as one line for `/ready`, metrics and the log: the error and each
//! of its sources, skipping a source whose text the line already holds
//! (many errors repeat their cause in their own message).

/// `error` and its chain of sources, joined by `": "`.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
