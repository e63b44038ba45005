import { createApp } from 'vue';
import App from './App.vue';
import { whenSessionLost } from './api';
import { router } from './router';
import { forgetSession, session } from './session';
import './style.css';

// A session that ends mid-use (expired, logged out elsewhere): back to the login page, then back here.
whenSessionLost(() => {
  const wasLoggedIn = session.user !== null;
  forgetSession();
  const current = router.currentRoute.value;
  if (wasLoggedIn && current.name !== 'login') {
    void router.push({ name: 'login', query: { next: current.fullPath, expired: '1' } });
  }
});

// Mounted once the first navigation is done, so that nothing (the header's links with their `next`) is drawn for a route not yet reached.
const app = createApp(App).use(router);
void router.isReady().then(() => app.mount('#app'));
