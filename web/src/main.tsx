/** The viewer's entry point: reads the configuration, then renders the app into #app. */
import { render } from 'preact';
import { Api } from './api.js';
import { App } from './app.js';

const root = document.getElementById('app');
if (root !== null) {
  Api.load()
    .then((api) => render(<App api={api} />, root))
    .catch((e: unknown) => {
      root.textContent = `keyframe could not start: ${e instanceof Error ? e.message : String(e)}`;
    });
}
