// Operation types are inferred from schema.graphql (see tsconfig's gql.tada plugin): a schema
// change that breaks a query here fails `npm run build`.
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from '../generated/graphql-env.d.ts';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { DateTime: string; NaiveDate: string; Date: string; JSON: unknown; ID: string };
}>();

export type { FragmentOf, ResultOf, VariablesOf } from 'gql.tada';
export { readFragment } from 'gql.tada';
