// Compiled with `tsc --noEmit --strict` by tests/client.test.mjs: proves the generated types
// describe the schema well enough to program against.
import type {
  ContactsPageQuery,
  ContactsPageQueryVariables,
  RenameContactMutation,
  RenameContactMutationVariables,
} from '../generated/graphql';

export const firstPage: ContactsPageQueryVariables = { first: 5 };

export function contactNames(data: ContactsPageQuery): string[] {
  return data.contacts.edges.map((edge) => edge.node.name ?? edge.node.id);
}

export function nextPage(data: ContactsPageQuery): ContactsPageQueryVariables | null {
  const { hasNextPage, endCursor } = data.contacts.pageInfo;
  return hasNextPage ? { first: 5, after: endCursor } : null;
}

export const rename: RenameContactMutationVariables = { id: 'some-id', firstName: 'Ada' };

export function renamedTo(result: RenameContactMutation): string | null | undefined {
  return result.updateContact.contact?.firstName;
}
