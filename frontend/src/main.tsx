import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router-dom';
import { MantineProvider, Modal, Notification, createTheme } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import '@mantine/spotlight/styles.css';
import './theme.css';
import { App } from './App';
import { refresh, markSignedOut } from './session';

// Shade 8 of blue and a darker "dimmed" text (theme.css) keep text at WCAG AA contrast.
// Close buttons of notifications and dialogs are named for screen readers (theme.css darkens a
// notification's text).
const theme = createTheme({
  primaryColor: 'blue',
  primaryShade: 8,
  defaultRadius: 'md',
  autoContrast: true,
  components: {
    Notification: Notification.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Dismiss notification' } } }),
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Close dialog' } } }),
  },
});

// Restore the session from the refresh cookie before the first render decides what to show
// (the readable `devsignal_session` hint says whether there is one to restore).
if (document.cookie.split(';').some((c) => c.trim() === 'devsignal_session=1')) void refresh();
else markSignedOut();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <MantineProvider theme={theme} defaultColorScheme="light">
        <Notifications />
        <BrowserRouter>
          <App />
        </BrowserRouter>
      </MantineProvider>
    </StrictMode>,
  );
}
