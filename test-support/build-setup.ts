import { buildProduct } from './processes.js';

/** End-to-end tests spawn the built apps: build once before any of them runs, never two at once. */
export default function setup() {
  buildProduct();
}
