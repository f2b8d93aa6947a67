// amqplib over amqps (TLS), run by test_tls.py: AMQPS_URL=amqps://... TLS_CA=ca.pem node amqps_roundtrip.js
// Publishes a 200000-byte body with a confirm, consumes it back, prints "ok <length>".
'use strict';
const fs = require('node:fs');
const assert = require('node:assert/strict');
const amqp = require('amqplib');

async function main() {
  const conn = await amqp.connect(process.env.AMQPS_URL, {
    ca: [fs.readFileSync(process.env.TLS_CA)],
    servername: 'localhost',
  });
  try {
    const ch = await conn.createConfirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const body = Buffer.alloc(200000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    ch.sendToQueue(queue, body, { contentType: 'application/octet-stream' });
    await ch.waitForConfirms();
    const msg = await new Promise((resolve) => {
      ch.consume(queue, (m) => { ch.ack(m); resolve(m); });
    });
    assert.ok(msg.content.equals(body), 'the body came back changed');
    console.log(`ok ${msg.content.length}`);
  } finally {
    await conn.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
