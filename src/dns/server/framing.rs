//! DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): each message is
//! preceded by its length as two bytes, big-endian. A pure function from
//! the bytes read so far to the next message, so that it can be fuzzed
//! (`disco::fuzzing::tcp_framing`) and tested without a socket.

/// The length prefix in front of every message.
pub const PREFIX_LEN: usize = 2;

/// The shortest message worth reading: a DNS header.
pub const MIN_MESSAGE: usize = 12;

/// What the bytes at the start of a connection's buffer hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole message (without its prefix); it and its prefix take
    /// `message.len() + PREFIX_LEN` bytes of the buffer.
    Message(&'a [u8]),
    /// Not a whole message yet: at least `needed` more bytes must come.
    Incomplete {
        /// Bytes missing before the next message is whole.
        needed: usize,
    },
}

/// Bytes that cannot be a DNS message on TCP; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The prefix announces fewer bytes than a DNS header (RFC 1035 §4.1.1);
    /// no query is that short, and a zero length would otherwise let a
    /// client spin the reader without ever sending a message.
    #[error("a TCP message of {length} bytes is shorter than a DNS header")]
    TooShort {
        /// The length the prefix gave.
        length: usize,
    },
}

/// The next message at the start of `bytes`. Every length from
/// [`MIN_MESSAGE`] to 65,535 is a valid frame; a shorter one is an error.
pub fn next_message(bytes: &[u8]) -> Result<Next<'_>, FrameError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<PREFIX_LEN>() else {
        return Ok(Next::Incomplete {
            needed: PREFIX_LEN - bytes.len(),
        });
    };
    let length = usize::from(u16::from_be_bytes(*prefix));
    if length < MIN_MESSAGE {
        return Err(FrameError::TooShort { length });
    }
    match rest.get(..length) {
        Some(message) => Ok(Next::Message(message)),
        None => Ok(Next::Incomplete {
            needed: length - rest.len(),
        }),
    }
}

/// `message` with its length prefix, as it goes on the wire. Messages
/// longer than 65,535 bytes cannot be framed: the answer writers never
/// produce one (`answer::MAX_MESSAGE`), and such a message is cut to
/// what the prefix can say rather than framed wrongly.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let message = &message[..message.len().min(usize::from(u16::MAX))];
    let mut framed = Vec::with_capacity(PREFIX_LEN + message.len());
    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: u8) -> Vec<u8> {
        vec![id, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    }

    #[test]
    fn a_message_is_read_once_its_prefix_and_bytes_are_all_there() {
        let framed = frame(&header(7));
        for cut in 0..framed.len() {
            assert_eq!(
                next_message(&framed[..cut]),
                Ok(Next::Incomplete {
                    needed: if cut < 2 { 2 - cut } else { framed.len() - cut }
                }),
                "cut at {cut}"
            );
        }
        assert_eq!(next_message(&framed), Ok(Next::Message(&header(7)[..])));
    }

    #[test]
    fn pipelined_messages_are_read_one_after_the_other() {
        let mut wire = frame(&header(1));
        wire.extend(frame(&header(2)));
        wire.extend_from_slice(&[0, 12, 3]);
        let Ok(Next::Message(first)) = next_message(&wire) else {
            panic!("no first message");
        };
        assert_eq!(first, header(1));
        let rest = &wire[first.len() + PREFIX_LEN..];
        let Ok(Next::Message(second)) = next_message(rest) else {
            panic!("no second message");
        };
        assert_eq!(second, header(2));
        let rest = &rest[second.len() + PREFIX_LEN..];
        assert_eq!(next_message(rest), Ok(Next::Incomplete { needed: 11 }));
    }

    #[test]
    fn a_length_shorter_than_a_header_is_refused() {
        for length in 0..MIN_MESSAGE as u8 {
            assert_eq!(
                next_message(&[0, length, 0, 0]),
                Err(FrameError::TooShort {
                    length: length.into()
                })
            );
        }
    }

    #[test]
    fn the_longest_message_is_framed_and_read_back() {
        let message = vec![0xab; 65_535];
        let framed = frame(&message);
        assert_eq!(&framed[..2], &[0xff, 0xff]);
        assert_eq!(next_message(&framed), Ok(Next::Message(&message[..])));
    }
}
