//! Any byte stream, as a TCP client sends it, read by the framing code
//! (`dns::server::framing`) in pieces cut at any points, as the connection
//! reader gets them from the socket: it must never panic, must frame the
//! same messages and stop at the same place however the stream is cut, and
//! must agree with a reading of RFC 1035 §4.2.2 written out here.
//!
//! The input is the cuts, then the stream: its first byte says how many
//! reads (up to 31) come before the last; each of the next that many bytes
//! is the length of one read (below 128, that many bytes; from 128, that
//! many less 127 times 256, so that a read can hold a long message); the
//! last read holds what is left of the stream.

use crate::dns::server::framing::{self, FrameError, MIN_MESSAGE, Next, PREFIX_LEN};

/// Where reading a whole stream ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The stream ran out with this many bytes of an unfinished message
    /// (prefix included) buffered.
    Pending(usize),
    /// A prefix gave a length no message can have; the connection closes.
    Refused(FrameError),
}

/// Reads `data`'s stream in the reads its cuts give, and checks it.
pub fn run(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 32).min(rest.len());
    let (cuts, stream) = rest.split_at(count);
    let mut reads = Vec::with_capacity(cuts.len() + 1);
    let mut left = stream;
    for &cut in cuts {
        let size = match cut {
            0..128 => usize::from(cut),
            _ => usize::from(cut - 127) * 256,
        };
        let (read, after) = left.split_at(size.min(left.len()));
        reads.push(read);
        left = after;
    }
    reads.push(left);

    let (messages, end) = read_in_pieces(&reads);
    let (whole_messages, whole_end) = read_in_pieces(&[stream]);
    assert_eq!(messages, whole_messages, "the messages, however cut");
    assert_eq!(end, whole_end, "where reading stopped, however cut");
    let (expected_messages, expected_end) = reference(stream);
    assert_eq!(messages, expected_messages, "the messages RFC 1035 frames");
    assert_eq!(end, expected_end, "where RFC 1035 framing stops");

    // Each message, framed as disco writes it, reads back as itself.
    for message in &messages {
        let framed = framing::frame(message);
        assert_eq!(
            framing::next_message(&framed),
            Ok(Next::Message(&message[..])),
            "a framed message reads back"
        );
    }
}

/// Reads `reads` one after the other as the connection reader does: each
/// appended to a buffer, the whole messages at its start taken, the rest
/// kept for the next read. Checks what every `Incomplete` says.
fn read_in_pieces(reads: &[&[u8]]) -> (Vec<Vec<u8>>, End) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    for (i, read) in reads.iter().enumerate() {
        buffer.extend_from_slice(read);
        let mut consumed = 0;
        loop {
            match framing::next_message(&buffer[consumed..]) {
                Ok(Next::Message(message)) => {
                    assert!(
                        message.len() >= MIN_MESSAGE,
                        "a message shorter than a header"
                    );
                    messages.push(message.to_vec());
                    consumed += PREFIX_LEN + message.len();
                    assert!(consumed <= buffer.len(), "a message beyond the buffer");
                }
                Ok(Next::Incomplete { needed }) => {
                    check_needed(&buffer[consumed..], needed, &reads[i + 1..]);
                    break;
                }
                Err(err) => return (messages, End::Refused(err)),
            }
        }
        buffer.drain(..consumed);
    }
    (messages, End::Pending(buffer.len()))
}

/// `needed` is more than nothing, and fewer bytes than it leave the
/// message incomplete (the reader may wait for that many before looking
/// again).
fn check_needed(pending: &[u8], needed: usize, later: &[&[u8]]) {
    assert!(needed > 0, "Incomplete with nothing needed");
    assert!(
        pending.len() + needed <= PREFIX_LEN + usize::from(u16::MAX),
        "needs {needed} bytes beyond the longest message"
    );
    let more: Vec<u8> = later.concat();
    let mut short = pending.to_vec();
    short.extend_from_slice(&more[..(needed - 1).min(more.len())]);
    assert!(
        matches!(
            framing::next_message(&short),
            Ok(Next::Incomplete { .. }) | Err(_)
        ),
        "a message whole with fewer than the {needed} bytes said needed"
    );
}

/// RFC 1035 §4.2.2 read plainly: a two-byte length, big-endian, then that
/// many bytes; a length below a header's refused.
fn reference(stream: &[u8]) -> (Vec<Vec<u8>>, End) {
    let mut messages = Vec::new();
    let mut at = 0;
    while stream.len() - at >= 2 {
        let length = usize::from(stream[at]) << 8 | usize::from(stream[at + 1]);
        if length < MIN_MESSAGE {
            return (messages, End::Refused(FrameError::TooShort { length }));
        }
        if stream.len() - at - 2 < length {
            break;
        }
        messages.push(stream[at + 2..at + 2 + length].to_vec());
        at += 2 + length;
    }
    (messages, End::Pending(stream.len() - at))
}
