// A tools module for `chatglm agent` / `chatglm chat`: the default export is an array of tools.
//   node bin/chatglm.js agent --tools-module examples/weather-tools.mjs --prompt "What's the weather in Paris?"
import { defineTool } from 'chatglm.ts';

export default [
  defineTool({
    name: 'get_current_weather',
    description: 'Get the current weather in a given city',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string', description: 'The city, e.g. Paris' } },
      required: ['location'],
    },
    // A real tool would call a weather service here (and pass `signal` on to fetch).
    run: async ({ location }, { signal }) => ({ temperature: 22, description: 'sunny' }),
  }),
];
