//! Relay connections: cursors, the page a connection's arguments ask for (`first` and `after`
//! forwards, `last` and `before` backwards), the order of a list (`orderBy`), and the total
//! count of a list, read only when asked for.

use super::{internal, services, DEFAULT_PAGE, MAX_PAGE};
use crate::domain::ids::ChannelId;
use crate::store::{Listing, Order, Page, StoreError};
use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Context, Enum, Error, InputObject, Object, OutputType, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::future::Future;

/// A connection cursor: an opaque token for a row's position.
pub struct Cursor(pub i64);

impl CursorType for Cursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| "invalid cursor")?;
        let text = std::str::from_utf8(&raw).map_err(|_| "invalid cursor")?;
        text.strip_prefix("cursor:")
            .and_then(|n| n.parse().ok())
            .map(Cursor)
            .ok_or("invalid cursor")
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("cursor:{}", self.0))
    }
}

/// A connection's arguments.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl Window {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        Window {
            first,
            after,
            last,
            before,
        }
    }

    /// The page these arguments ask for from a list in `order`, one row longer than asked
    /// (to tell whether there are more), and how many rows were asked for.
    pub fn page(&self, order: Order) -> Result<(Page, usize)> {
        let (from_end, size) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(Error::new("give first or last, not both"));
            }
            (None, Some(last)) => (true, last),
            (first, None) => (false, first.unwrap_or(DEFAULT_PAGE)),
        };
        if !(0..=MAX_PAGE).contains(&size) {
            let which = if from_end { "last" } else { "first" };
            return Err(Error::new(format!(
                "{which} must be between 0 and {MAX_PAGE}"
            )));
        }
        let page = Page {
            after: cursor(self.after.as_deref())?,
            before: cursor(self.before.as_deref())?,
            limit: i64::from(size) + 1,
            order,
            from_end,
        };
        Ok((page, usize::try_from(size).unwrap_or(0)))
    }
}

fn cursor(raw: Option<&str>) -> Result<Option<i64>> {
    raw.map(|c| Cursor::decode_cursor(c).map(|c| c.0).map_err(Error::new))
        .transpose()
}

/// The count of a whole list, unpaged: `totalCount` on every connection, counted only when a
/// query asks for it.
pub struct Total {
    channel: ChannelId,
    listing: Listing,
}

impl Total {
    pub fn of(channel: ChannelId, listing: Listing) -> Self {
        Total { channel, listing }
    }
}

#[Object]
impl Total {
    /// The total unpaginated count of selected nodes.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        services(ctx)?
            .store
            .count(self.channel, &self.listing)
            .await
            .map_err(internal)
    }
}

/// The connection `window` asks for of a list in `order`, its page read by `read`.
pub async fn paged<T, N: OutputType, F>(
    window: Window,
    order: Order,
    total: Total,
    read: impl FnOnce(Page) -> F,
    key: impl Fn(&T) -> i64,
    node: impl Fn(T) -> N,
) -> Result<Connection<Cursor, N, Total>>
where
    F: Future<Output = Result<Vec<T>, StoreError>>,
{
    let page = window.page(order)?;
    let rows = read(page.0).await.map_err(internal)?;
    Ok(connection(rows, page, total, key, node))
}

/// A connection of the rows of a page read with [`Window::page`], `want` of which were asked
/// for.
pub fn connection<T, N: OutputType>(
    rows: Vec<T>,
    (page, want): (Page, usize),
    total: Total,
    key: impl Fn(&T) -> i64,
    node: impl Fn(T) -> N,
) -> Connection<Cursor, N, Total> {
    let more = rows.len() > want;
    // The row read beyond the page lies past its far end: the end of the list for `first`, its
    // start for `last`.
    let skip = if page.from_end {
        rows.len() - want.min(rows.len())
    } else {
        0
    };
    let (has_previous, has_next) = if page.from_end {
        (more, false)
    } else {
        (false, more)
    };
    let mut conn = Connection::with_additional_fields(has_previous, has_next, total);
    conn.edges.extend(
        rows.into_iter()
            .skip(skip)
            .take(want)
            .map(|r| Edge::new(Cursor(key(&r)), node(r))),
    );
    conn
}

/// Possible directions in which to order a list of items when provided an `orderBy` argument.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderDirection {
    Asc,
    Desc,
}

impl From<OrderDirection> for Order {
    fn from(d: OrderDirection) -> Self {
        match d {
            OrderDirection::Asc => Order::Ascending,
            OrderDirection::Desc => Order::Descending,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookOrderField {
    /// Order webhooks by when they were created.
    CreatedAt,
}

/// Ordering options for webhooks connections.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct WebhooksOrder {
    pub direction: OrderDirection,
    pub field: WebhookOrderField,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookDeliveryOrderField {
    /// Order webhook deliveries by when they were created.
    CreatedAt,
}

/// Ordering options for webhook deliveries connections.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct WebhookDeliveriesOrder {
    pub direction: OrderDirection,
    pub field: WebhookDeliveryOrderField,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(first: Option<i32>, last: Option<i32>) -> Window {
        Window {
            first,
            last,
            ..Window::default()
        }
    }

    #[test]
    fn windows_read_forwards_or_backwards() {
        let (page, want) = window(None, None).page(Order::Ascending).expect("default");
        assert_eq!((page.limit, want, page.from_end), (21, 20, false));
        let (page, want) = window(None, Some(2)).page(Order::Descending).expect("last");
        assert_eq!((page.limit, want, page.from_end), (3, 2, true));
        assert!(window(Some(1), Some(1)).page(Order::Ascending).is_err());
        assert!(window(Some(101), None).page(Order::Ascending).is_err());
        assert!(window(None, Some(-1)).page(Order::Ascending).is_err());
        let bad_cursor = Window {
            before: Some("nope".into()),
            ..Window::default()
        };
        assert!(bad_cursor.page(Order::Ascending).is_err());
    }

    #[test]
    fn a_page_from_the_end_drops_the_extra_row_at_its_start() {
        let (page, want) = window(None, Some(2)).page(Order::Ascending).expect("last");
        let total = || Total::of(ChannelId(1), Listing::Users);
        let conn = connection(vec![1, 2, 3], (page, want), total(), |n| *n, |n| n);
        let keys: Vec<i64> = conn.edges.iter().map(|e| e.node).collect();
        assert_eq!(keys, vec![2, 3]);
        assert!(conn.has_previous_page && !conn.has_next_page);
        let (page, want) = window(Some(2), None).page(Order::Ascending).expect("first");
        let conn = connection(vec![1, 2, 3], (page, want), total(), |n| *n, |n| n);
        let keys: Vec<i64> = conn.edges.iter().map(|e| e.node).collect();
        assert_eq!(keys, vec![1, 2]);
        assert!(!conn.has_previous_page && conn.has_next_page);
    }
}
