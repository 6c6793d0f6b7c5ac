//! Stop strings: text is released only once it can no longer be the start of a stop string, so
//! a stop that spans several tokens never reaches the client, not even in part.

/// Holds back generated text that could still turn into one of the stop strings.
#[derive(Debug, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// The text one [`StopMatcher::push`] released.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Released {
    /// Text that is safe to send.
    pub(crate) text: String,
    /// True when a stop string was found; the text before it is in `text`, the rest is dropped.
    pub(crate) stopped: bool,
}

impl StopMatcher {
    /// Creates a matcher for `stops`, ignoring empty strings.
    pub(crate) fn new(stops: Vec<String>) -> StopMatcher {
        let stops = stops.into_iter().filter(|stop| !stop.is_empty()).collect();
        StopMatcher {
            stops,
            held: String::new(),
        }
    }

    /// Adds a piece of generated text and returns what can be sent now.
    pub(crate) fn push(&mut self, piece: &str) -> Released {
        if self.stops.is_empty() {
            return Released {
                text: piece.to_owned(),
                stopped: false,
            };
        }
        self.held.push_str(piece);

        if let Some(position) = self.first_stop() {
            let text = self.held[..position].to_owned();
            self.held.clear();
            return Released {
                text,
                stopped: true,
            };
        }

        let keep = self.longest_stop_prefix_suffix();
        let text = self.held[..self.held.len() - keep].to_owned();
        self.held.drain(..self.held.len() - keep);
        Released {
            text,
            stopped: false,
        }
    }

    /// Returns the text still held back, at the end of generation.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Byte offset of the earliest stop string in the held text.
    fn first_stop(&self) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min()
    }

    /// Length of the longest end of the held text that begins some stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let held = &self.held;
        held.char_indices()
            .map(|(start, _)| start)
            .find(|&start| {
                let tail = &held[start..];
                self.stops.iter().any(|stop| stop.starts_with(tail))
            })
            .map_or(0, |start| held.len() - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool, String) {
        let mut matcher = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut sent = Vec::new();
        for piece in pieces {
            let released = matcher.push(piece);
            sent.push(released.text);
            if released.stopped {
                return (sent, true, String::new());
            }
        }
        (sent, false, matcher.finish())
    }

    #[test]
    fn stop_spanning_pieces_is_never_sent() {
        let (sent, stopped, _) = run(&["END"], &["Hello E", "N", "D and more"]);
        assert!(stopped);
        assert_eq!(sent, ["Hello ", "", ""]);
    }

    #[test]
    fn held_text_is_released_when_the_stop_does_not_follow() {
        let (sent, stopped, rest) = run(&["END"], &["Hello E", "NTER", "!"]);
        assert!(!stopped);
        assert_eq!(sent.concat() + &rest, "Hello ENTER!");
        assert_eq!(sent[0], "Hello ");
    }

    #[test]
    fn tail_is_flushed_at_the_end() {
        let (sent, stopped, rest) = run(&["\n\n"], &["one", "\n"]);
        assert!(!stopped);
        assert_eq!(sent, ["one", ""]);
        assert_eq!(rest, "\n");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let (sent, stopped, _) = run(&["cd", "b"], &["abcd"]);
        assert!(stopped);
        assert_eq!(sent, ["a"]);
    }

    #[test]
    fn multibyte_stops_split_on_characters() {
        let (sent, stopped, _) = run(&["é!"], &["caf", "é", "!"]);
        assert!(stopped);
        assert_eq!(sent.concat(), "caf");
    }

    #[test]
    fn no_stops_pass_everything() {
        let (sent, stopped, rest) = run(&[], &["a", "b"]);
        assert!(!stopped);
        assert_eq!(sent, ["a", "b"]);
        assert_eq!(rest, "");
    }
}
