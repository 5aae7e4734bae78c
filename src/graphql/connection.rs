//! Relay connections: `edges { cursor node }`, `nodes`, `pageInfo` and `totalCount`,
//! one generic type named after its node (`ContactConnection`, `TagEdge`, ...).
use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::resolver_utils::ContainerType;
use async_graphql::{Object, OutputType, SimpleObject, TypeName};
use futures::future::BoxFuture;

use super::plain_fields::{DirectFields, PlainFields};
use crate::paging::{Ordering, Page};

/// Where a connection's `totalCount` comes from.
pub enum TotalCount {
    /// Counted with the page.
    Known(i64),
    /// Counted by a statement of its own, run only when `totalCount` is asked for.
    Deferred(Arc<dyn Fn() -> BoxFuture<'static, crate::Result<i64>> + Send + Sync>),
}

/// Information about the page a connection holds (Relay).
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// More items follow this page (when paging forwards with `first`, exact; with `last`,
    /// true when `before` was given).
    pub has_next_page: bool,
    /// More items precede this page (when paging backwards with `last`, exact; with `first`,
    /// true when `after` was given).
    pub has_previous_page: bool,
    /// Cursor of the first item of the page, for `last`/`before`.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page, for `first`/`after`.
    pub end_cursor: Option<String>,
}

/// Makes the cursor of a node, when it is asked for.
type CursorOf<N> = Arc<dyn Fn(&N) -> String + Send + Sync>;

/// An edge's cursor: made with the page, or only when a query selects it (a nested page's
/// edges: most queries of nested lists select none, and making 500 of them cost 3.4% of the
/// server's CPU for issue 19's nested query).
enum EdgeCursor<N> {
    Made(String),
    OnDemand(CursorOf<N>),
}

/// One item of a connection and its cursor.
pub struct Edge<N> {
    cursor: EdgeCursor<N>,
    node: N,
}

/// An item of a page together with its cursor.
#[Object(name_type)]
impl<N: ContainerType + DirectFields + Clone> Edge<N> {
    /// Opaque cursor of this item: pass it as `after` or `before`.
    async fn cursor(&self) -> String {
        self.cursor_text()
    }

    /// The item.
    async fn node(&self) -> PlainFields<&N> {
        PlainFields(&self.node)
    }
}

/// An edge's fields (`cursor`, `node`) go through their resolvers.
impl<N> DirectFields for Edge<N> {}

impl<N> Edge<N> {
    /// This edge's cursor, made now if it was not made with the page.
    fn cursor_text(&self) -> String {
        match &self.cursor {
            EdgeCursor::Made(cursor) => cursor.clone(),
            EdgeCursor::OnDemand(cursor_of) => cursor_of(&self.node),
        }
    }
}

impl<N: OutputType> TypeName for Edge<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Edge", N::type_name()).into()
    }
}

/// A page of a list, Relay style.
pub struct Connection<N> {
    edges: Vec<Edge<N>>,
    page_info: PageInfo,
    total: TotalCount,
}

impl<N> Connection<N> {
    /// The connection of `page`, its nodes made by `wrap`, its cursors by `ordering`.
    pub fn new<M>(
        page: Page<M>,
        ordering: &Ordering<M>,
        total: TotalCount,
        wrap: impl Fn(M) -> N,
    ) -> Self {
        let edges: Vec<Edge<N>> = page
            .rows
            .into_iter()
            .map(|row| Edge {
                cursor: EdgeCursor::Made(ordering.cursor_of(&row)),
                node: wrap(row),
            })
            .collect();
        Self::of_edges(edges, page.has_next, page.has_previous, total)
    }

    /// The connection of a page shared with others (a DataLoader's cached value): its rows
    /// are borrowed, each node made by `wrap`. Only `pageInfo`'s two cursors are made with
    /// it; an edge's is made from its node (`row_of`) when a query selects it.
    pub fn of_shared<M: Send + Sync + 'static>(
        page: &Page<Arc<M>>,
        ordering: Ordering<M>,
        total: TotalCount,
        wrap: impl Fn(&Arc<M>) -> N,
        row_of: fn(&N) -> &M,
    ) -> Self
    where
        Ordering<M>: Send + Sync,
        N: 'static,
    {
        let cursor_of: CursorOf<N> = Arc::new(move |node: &N| ordering.cursor_of(row_of(node)));
        let edges: Vec<Edge<N>> = page
            .rows
            .iter()
            .map(|row| Edge {
                cursor: EdgeCursor::OnDemand(cursor_of.clone()),
                node: wrap(row),
            })
            .collect();
        Self::of_edges(edges, page.has_next, page.has_previous, total)
    }

    fn of_edges(
        edges: Vec<Edge<N>>,
        has_next_page: bool,
        has_previous_page: bool,
        total: TotalCount,
    ) -> Self {
        let page_info = PageInfo {
            has_next_page,
            has_previous_page,
            start_cursor: edges.first().map(Edge::cursor_text),
            end_cursor: edges.last().map(Edge::cursor_text),
        };
        Self {
            edges,
            page_info,
            total,
        }
    }

    /// A connection of items with their cursors, for lists not paged by [`Ordering`].
    pub fn from_edges(
        items: Vec<(String, N)>,
        has_next_page: bool,
        has_previous_page: bool,
        total: TotalCount,
    ) -> Self {
        let edges: Vec<Edge<N>> = items
            .into_iter()
            .map(|(cursor, node)| Edge {
                cursor: EdgeCursor::Made(cursor),
                node,
            })
            .collect();
        Self::of_edges(edges, has_next_page, has_previous_page, total)
    }
}

/// A page of a list, Relay style.
#[Object(name_type)]
impl<N: ContainerType + DirectFields + Clone> Connection<N> {
    /// The items of this page with their cursors.
    async fn edges(&self) -> Vec<PlainFields<&Edge<N>>> {
        self.edges.iter().map(PlainFields).collect()
    }

    /// The items of this page, without cursors.
    async fn nodes(&self) -> Vec<PlainFields<&N>> {
        self.edges.iter().map(|e| PlainFields(&e.node)).collect()
    }

    /// Where this page stands in the list.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Number of items in the whole list (all pages), with the filter applied.
    async fn total_count(&self) -> async_graphql::Result<i64> {
        match &self.total {
            TotalCount::Known(n) => Ok(*n),
            TotalCount::Deferred(count) => Ok(count().await?),
        }
    }
}

impl<N: OutputType> TypeName for Connection<N> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Connection", N::type_name()).into()
    }
}
