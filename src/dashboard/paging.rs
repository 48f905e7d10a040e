//! Keyset pages of a list shown newest first, with "newer" and "older" links: the cursors are
//! row ids, so a page stays put while rows are added above it.

use crate::store::{Order, Page};

/// Rows on one page.
pub const PAGE_SIZE: i64 = 25;

/// Where a page starts: just older than a row, just newer than one, or (neither) the newest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    pub older_than: Option<i64>,
    pub newer_than: Option<i64>,
}

/// One page's rows, and whether there are rows either side of it.
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub newer: Option<i64>,
    pub older: Option<i64>,
}

impl Cursor {
    /// The store's page for this cursor: one row more than shown, to tell whether there are
    /// more beyond it.
    pub fn page(self) -> Page {
        Page {
            after: self.older_than.filter(|_| self.newer_than.is_none()),
            before: self.newer_than,
            limit: PAGE_SIZE + 1,
            order: Order::Descending,
            from_end: self.newer_than.is_some(),
        }
    }

    /// The page shown of `rows` (as the store returned them for [`Cursor::page`], newest
    /// first), with the cursors of the pages either side when there are rows there.
    pub fn split<T>(self, mut rows: Vec<T>, id: impl Fn(&T) -> i64) -> Paged<T> {
        let full = rows.len() > PAGE_SIZE as usize;
        let (more_newer, more_older) = if self.newer_than.is_some() {
            if full {
                rows.remove(0);
            }
            (full, true)
        } else {
            rows.truncate(PAGE_SIZE as usize);
            (self.older_than.is_some(), full)
        };
        Paged {
            newer: rows.first().map(&id).filter(|_| more_newer),
            older: rows.last().map(&id).filter(|_| more_older),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_links_to_older_rows_and_the_first_to_no_newer() {
        let rows: Vec<i64> = (1..=30).rev().collect();
        let first = Cursor::default().split(rows[..26].to_vec(), |r| *r);
        assert_eq!(first.rows.len(), 25);
        assert_eq!((first.newer, first.older), (None, Some(6)));

        let back = Cursor {
            newer_than: Some(6),
            older_than: None,
        };
        assert_eq!(back.page().before, Some(6));
        assert!(back.page().from_end);
        let newest = back.split(rows[..24].to_vec(), |r| *r);
        assert_eq!((newest.newer, newest.older), (None, Some(7)));
        let middle = back.split(rows[..26].to_vec(), |r| *r);
        assert_eq!(middle.rows.first(), Some(&29));
        assert_eq!((middle.newer, middle.older), (Some(29), Some(5)));
    }
}
