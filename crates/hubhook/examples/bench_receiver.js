// The callback receiver of `bench delivery` (issue #10 measured with a Node receiver): answers
// 200 to every POST after parsing its JSON, counts notifications and events, and keeps the
// first 256 bodies for the ceiling client. GET /stats and GET /samples report to the bench.
// Prints its port on the first line of stdout.
const http = require("http");
let posts = 0, events = 0, first = null, last = null;
const samples = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (req.method === "POST") {
      const body = Buffer.concat(chunks).toString("utf8");
      let n = 0;
      try { n = JSON.parse(body).message.events.length; } catch (e) { n = 0; }
      const now = performance.now();
      if (first === null) first = now;
      last = now;
      posts += 1;
      events += n;
      if (samples.length < 256) samples.push(body);
      res.end("ok");
    } else if (req.url === "/stats") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ posts, events, spreadMs: first === null ? 0 : last - first }));
    } else if (req.url === "/samples") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(samples));
    } else if (req.url === "/reset") {
      posts = 0; events = 0; first = null; last = null;
      res.end("ok");
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
