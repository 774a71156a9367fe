//! The needle search of a scan: which records contain a needle, and where the next one is.

use memchr::memmem::Finder;

/// Finds needles in one buffer, remembering the last search so that records taken in
/// order cost one pass over the input.
pub(super) struct Needles<'n> {
    finders: &'n [Finder<'n>],
    last: Vec<Option<(usize, Option<usize>)>>,
}

impl<'n> Needles<'n> {
    pub(super) fn new(finders: &'n [Finder<'n>]) -> Self {
        Self {
            finders,
            last: vec![None; finders.len()],
        }
    }

    fn first_hit(&mut self, index: usize, bytes: &[u8], from: usize) -> Option<usize> {
        match self.last[index] {
            Some((searched_from, None)) if from >= searched_from => None,
            Some((searched_from, Some(hit))) if from >= searched_from && hit >= from => Some(hit),
            _ => {
                let hit = bytes
                    .get(from..)
                    .and_then(|rest| self.finders[index].find(rest))
                    .map(|offset| from + offset);
                self.last[index] = Some((from, hit));
                hit
            }
        }
    }

    /// Finds the first position at or after `from` where any needle starts.
    pub(super) fn next_hit(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        (0..self.finders.len())
            .filter_map(|index| self.first_hit(index, bytes, from))
            .min()
    }

    /// Returns `true` when a whole needle lies within `start..end`.
    pub(super) fn any_within(&mut self, bytes: &[u8], start: usize, end: usize) -> bool {
        (0..self.finders.len()).any(|index| {
            let needle_len = self.finders[index].needle().len();
            self.first_hit(index, bytes, start)
                .is_some_and(|hit| hit + needle_len <= end)
        })
    }
}
