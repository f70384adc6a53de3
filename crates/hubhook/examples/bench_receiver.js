// The callback receiver of `bench delivery` (issue #10 measured with a Node receiver): answers
// 200 to every POST after parsing its JSON, counts notifications and events, and keeps the
// first 256 bodies for the ceiling client. GET /stats and GET /samples report to the bench.
// POST /hold parks every POST unanswered (a backlog builds up behind it); POST /open answers
// the parked ones and every later POST at once, and /stats then also says how long after the
// opening the last POST was answered. Prints its port on the first line of stdout.
const http = require("http");
let posts = 0, events = 0, first = null, last = null;
let held = false, parked = [], openedAt = null, lastAnswer = null;
const samples = [];
const answer = (res) => {
  res.end("ok");
  lastAnswer = performance.now();
};
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (req.method === "POST" && req.url === "/hold") {
      held = true;
      res.end("ok");
    } else if (req.method === "POST" && req.url === "/open") {
      held = false;
      openedAt = performance.now();
      parked.forEach(answer);
      parked = [];
      res.end("ok");
    } else if (req.method === "POST" && req.url === "/reset") {
      posts = 0; events = 0; first = null; last = null; openedAt = null; lastAnswer = null;
      res.end("ok");
    } else if (req.method === "POST") {
      const body = Buffer.concat(chunks).toString("utf8");
      let n = 0;
      try { n = JSON.parse(body).message.events.length; } catch (e) { n = 0; }
      const now = performance.now();
      if (first === null) first = now;
      last = now;
      posts += 1;
      events += n;
      if (samples.length < 256) samples.push(body);
      if (held) parked.push(res); else answer(res);
    } else if (req.url === "/stats") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({
        posts, events, parked: parked.length,
        spreadMs: first === null ? 0 : last - first,
        sinceOpenMs: openedAt === null || lastAnswer === null ? 0 : lastAnswer - openedAt,
      }));
    } else if (req.url === "/samples") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(samples));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
