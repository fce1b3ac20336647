// Ctrl/⌘+K: jump to any page, or search accounts, contacts and deals (the API's ranked `search`).
import { useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { Spotlight, spotlight, type SpotlightActionData } from '@mantine/spotlight';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from 'urql';
import { graphql } from './graphql';
import { contactName } from './ui';

const SearchQuery = graphql(`
  query Search($query: String!) {
    search(query: $query, first: 8) {
      item {
        __typename
        ... on Account { id name domain }
        ... on Contact { id firstName lastName email github }
        ... on Deal { id title }
      }
    }
  }
`);

export const openPalette = () => spotlight.open();

const PAGES: [string, string][] = [
  ['Accounts', '/'],
  ['Contacts', '/contacts'],
  ['Deals', '/deals'],
  ['Signals', '/signals'],
  ['Get started', '/onboarding'],
  ['Integrations', '/settings/integrations'],
  ['API keys', '/settings/api-keys'],
  ['Webhooks', '/settings/webhooks'],
  ['Team', '/settings/team'],
  ['Scoring', '/settings/scoring'],
  ['Audit log', '/settings/audit'],
  ['Plan and usage', '/settings/usage'],
];

export function CommandPalette() {
  const navigate = useNavigate();
  const [query, setQuery] = useState('');
  const [debounced] = useDebouncedValue(query.trim(), 200);
  const [{ data }] = useQuery({ query: SearchQuery, variables: { query: debounced }, pause: debounced.length < 2 });
  const q = query.trim().toLowerCase();
  const pages: SpotlightActionData[] = PAGES.filter(([label]) => !q || label.toLowerCase().includes(q)).map(([label, to]) => ({
    id: `page:${to}`,
    label,
    description: 'Go to page',
    onClick: () => navigate(to),
  }));
  const hits: SpotlightActionData[] =
    debounced.length < 2
      ? []
      : (data?.search ?? []).map(({ item }) => {
          if (item.__typename === 'Account')
            return { id: `a:${item.id}`, label: item.name, description: `Account${item.domain ? ` · ${item.domain}` : ''}`, onClick: () => navigate(`/accounts/${item.id}`) };
          if (item.__typename === 'Contact')
            return { id: `c:${item.id}`, label: contactName(item), description: 'Contact', onClick: () => navigate(`/contacts/${item.id}`) };
          return { id: `d:${item.id}`, label: item.title, description: 'Deal', onClick: () => navigate('/deals') };
        });
  return (
    <Spotlight
      actions={[...hits, ...pages]}
      query={query}
      onQueryChange={setQuery}
      filter={(_, actions) => actions}
      shortcut={['mod + K', '/']}
      nothingFound="Nothing found"
      highlightQuery
      searchProps={{ placeholder: 'Search accounts, contacts, deals, or go to a page…', 'aria-label': 'Search' }}
    />
  );
}
