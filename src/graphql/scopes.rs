//! Scope checks in one place: queries need `contacts:read`, mutations `contacts:write`.
use crate::code::Code;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{ServerResult, Variables};

use super::limits::coded_error;
use crate::auth::{Principal, Scope};

/// The extension that refuses operations the caller's key does not allow.
pub struct RequireScopes;

impl ExtensionFactory for RequireScopes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequireScopes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequireScopes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let Some(principal) = ctx.data_opt::<Principal>() else {
            return Err(coded_error(Code::Unauthenticated, "no API key"));
        };
        for (_, operation) in document.operations.iter() {
            let needed = match operation.node.ty {
                OperationType::Mutation => Scope::ContactsWrite,
                _ => Scope::ContactsRead,
            };
            if !principal.allows(needed) {
                return Err(coded_error(
                    Code::Forbidden,
                    format!("this API key lacks the {needed} scope"),
                ));
            }
        }
        Ok(document)
    }
}
