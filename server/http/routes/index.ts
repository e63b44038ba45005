import type { RouteDefinition } from '../route.js';
import { pageRoutes } from './pages.js';

/** Every route of the API, in the order they are matched; the API description is made from this list. */
export const apiRoutes: readonly RouteDefinition[] = [...pageRoutes];
