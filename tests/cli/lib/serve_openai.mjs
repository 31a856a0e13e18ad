// The official `openai` npm package (package.json pins it) against `illada serve`: models,
// chat and text completions, streaming and not, usage, the error classes for 401 and 400.
// Usage: node serve_openai.mjs ILLADA_BIN MODEL_DIR
import OpenAI from "openai";
import { check, fail, startServer } from "./serve_start.mjs";

const [bin, model] = process.argv.slice(2);
const { server, port } = await startServer(bin, model, ["--api-key", "test-key", "--model-name", "tiny"]);

try {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "test-key", maxRetries: 0 });
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === "tiny", "models.list: " + JSON.stringify(models.data));

  // chat: non-streaming and streaming give the same text, finish_reason and usage
  const req = { model: "tiny", messages: [{ role: "user", content: "The cat sat" }], max_tokens: 24,
                block_length: 8, steps: 8 };
  const chat = await client.chat.completions.create(req);
  const answer = chat.choices[0].message.content;
  check(typeof answer === "string" && chat.choices[0].message.role === "assistant", "chat: " + JSON.stringify(chat));
  check(["stop", "length"].includes(chat.choices[0].finish_reason), "chat finish_reason");
  check(chat.usage.completion_tokens > 0 && chat.usage.prompt_tokens > 0, "chat usage " + JSON.stringify(chat.usage));
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = "", role = null, finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check(role === "assistant", "streamed chat without delta.role");
  check(text === answer, `streamed chat ${JSON.stringify(text)} != ${JSON.stringify(answer)}`);
  check(finish === chat.choices[0].finish_reason, "streamed finish_reason " + finish);
  check(JSON.stringify(usage) === JSON.stringify(chat.usage), "streamed usage " + JSON.stringify(usage));
  check(chunks >= 3, "too few chunks: " + chunks);

  // text completions, streaming and not
  const creq = { model: "tiny", prompt: "A dog ran to", max_tokens: 16, block_length: 8 };
  const comp = await client.completions.create(creq);
  check(comp.object === "text_completion" && typeof comp.choices[0].text === "string", "completion " + JSON.stringify(comp));
  let ctext = "";
  for await (const chunk of await client.completions.create({ ...creq, stream: true })) {
    for (const c of chunk.choices) ctext += c.text || "";
  }
  check(ctext === comp.choices[0].text, `streamed completion ${JSON.stringify(ctext)} != ${JSON.stringify(comp.choices[0].text)}`);

  // the client's error classes: a wrong key is an AuthenticationError, bad input a BadRequestError
  const wrong = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "nope", maxRetries: 0 });
  try {
    await wrong.models.list();
    fail("a wrong API key was accepted");
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError && e.status === 401, "wrong key: " + e);
  }
  try {
    await client.chat.completions.create({ ...req, temperature: -2 });
    fail("temperature -2 was accepted");
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.status === 400 && /temperature/.test(e.message), "bad request: " + e);
  }
  console.log("serve_openai: all checks passed");
} finally {
  server.kill("SIGTERM");
}
