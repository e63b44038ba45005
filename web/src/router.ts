import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router';
import { hasLevel, isAdmin, isStaff, loadSession, mustChangePassword, session } from './session';
import type { Level } from './types';
import Home from './pages/HomePage.vue';

declare module 'vue-router' {
  interface RouteMeta {
    /** The level a page needs (the server checks again on every request). */
    level?: Level;
    admin?: boolean;
    /** Any staff role; the page shows each role its own parts. */
    staff?: boolean;
    /** Partner exchange: L3 members and administrators. */
    partner?: boolean;
    title?: string;
  }
}

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', name: 'home', component: Home, meta: { title: 'Home' } },
    { path: '/guide/:slug?', name: 'guide', component: () => import('./pages/GuidePage.vue'), meta: { title: 'User guide' } },
    { path: '/account/register', name: 'register', component: () => import('./pages/RegisterPage.vue'), meta: { title: 'Register' } },
    { path: '/account/confirm', name: 'confirm', component: () => import('./pages/ConfirmPage.vue'), meta: { title: 'Confirm e-mail' } },
    { path: '/account/login', name: 'login', component: () => import('./pages/LoginPage.vue'), meta: { title: 'Log in' } },
    { path: '/account/forgot-password', name: 'forgot-password', component: () => import('./pages/ForgotPasswordPage.vue'), meta: { title: 'Forgot password' } },
    { path: '/account/reset-password', name: 'reset-password', component: () => import('./pages/ResetPasswordPage.vue'), meta: { title: 'Reset password' } },
    { path: '/account/change-password', name: 'change-password', component: () => import('./pages/ChangePasswordPage.vue'), meta: { level: 'L0', title: 'Change password' } },
    { path: '/account', name: 'account', component: () => import('./pages/AccountPage.vue'), meta: { level: 'L0', title: 'Account' } },
    // The mails link to these; they are sections of the account page.
    { path: '/account/dua', redirect: { name: 'account', hash: '#dua' } },
    { path: '/account/reports', redirect: { name: 'account', hash: '#reports' } },
    { path: '/catalog', name: 'catalog', component: () => import('./pages/CatalogPage.vue'), meta: { level: 'L1', title: 'Catalog' } },
    { path: '/slides/:id', name: 'slide', component: () => import('./pages/SlidePage.vue'), meta: { level: 'L1', title: 'Slide' } },
    { path: '/slides/:id/review', name: 'review', component: () => import('./pages/ReviewPage.vue'), meta: { staff: true, title: 'Annotation review' } },
    { path: '/worklist', name: 'worklist', component: () => import('./pages/WorklistPage.vue'), meta: { staff: true, title: 'Annotation worklist' } },
    { path: '/challenges', name: 'challenges', component: () => import('./pages/ChallengesPage.vue'), meta: { level: 'L1', title: 'Challenges' } },
    { path: '/challenges/:name', name: 'challenge', component: () => import('./pages/ChallengePage.vue'), meta: { level: 'L1', title: 'Challenge' } },
    { path: '/datasets', name: 'datasets', component: () => import('./pages/DatasetsPage.vue'), meta: { partner: true, title: 'Datasets' } },
    { path: '/admin/:tab?', name: 'admin', component: () => import('./pages/AdminPage.vue'), meta: { staff: true, title: 'Administration' } },
    { path: '/:rest(.*)*', name: 'not-found', component: () => import('./pages/NotFoundPage.vue'), meta: { title: 'Not found' } },
  ],
  scrollBehavior(to, _from, saved) {
    if (saved) return saved;
    if (to.hash && !to.hash.startsWith('#token=')) return { el: to.hash };
    return to.path === _from.path ? false : { top: 0 };
  },
});

/** Pages behind a login send the user to it and back; a page beyond the user's level says why instead. */
router.beforeEach(async (to: RouteLocationNormalized) => {
  if (!session.loaded) {
    try {
      await loadSession();
    } catch {
      // The layout shows the server problem; public pages still work.
    }
  }
  const needsLogin = to.meta.level !== undefined || to.meta.admin || to.meta.staff || to.meta.partner;
  if (needsLogin && !session.user) return { name: 'login', query: { next: to.fullPath } };
  // A password somebody else chose (the initial administrator's printed one) is changed before anything else.
  if (mustChangePassword() && to.name !== 'change-password') return { name: 'change-password', query: { next: to.fullPath } };
  if (to.meta.level && !hasLevel(to.meta.level)) return true; // the page renders a "not allowed" notice
  if (to.meta.admin && !isAdmin()) return true;
  if (to.meta.staff && !isStaff()) return true;
  return true;
});

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · Slidebank` : 'Slidebank';
});
