// amqplib (Node) against the broker under test. Run: AMQP_URL=amqp://... node --test
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const amqp = require('amqplib');

const URL = process.env.AMQP_URL;
const unique = (p) => `${p}-${crypto.randomBytes(6).toString('hex')}`;

test('AMQP_URL is set', () => {
  assert.ok(URL, 'set AMQP_URL to the broker under test');
});

test('publish and consume round trip with properties and headers', async () => {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const received = new Promise((resolve) => {
      const got = [];
      ch.consume(queue, (msg) => {
        got.push(msg);
        ch.ack(msg);
        if (got.length === 3) resolve(got);
      });
    });
    for (let i = 0; i < 3; i++) {
      ch.sendToQueue(queue, Buffer.from(`msg-${i}`), {
        contentType: 'text/plain', messageId: `id-${i}`, headers: { n: i, nested: { ok: true } },
      });
    }
    const got = await received;
    assert.deepEqual(got.map((m) => m.content.toString()), ['msg-0', 'msg-1', 'msg-2']);
    assert.deepEqual(got.map((m) => m.properties.messageId), ['id-0', 'id-1', 'id-2']);
    assert.equal(got[1].properties.headers.n, 1);
    assert.deepEqual(got[2].properties.headers.nested, { ok: true });
    assert.equal(got[0].fields.redelivered, false);
    assert.equal(got[0].fields.routingKey, queue);
  } finally {
    await conn.close();
  }
});

test('confirm channel acks every publish and waitForConfirms resolves', async () => {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createConfirmChannel();
    const ex = unique('nodex');
    await ch.assertExchange(ex, 'topic', { durable: false, autoDelete: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, ex, 'orders.*');
    const acks = [];
    for (let i = 0; i < 50; i++) {
      acks.push(new Promise((resolve, reject) => {
        ch.publish(ex, 'orders.created', Buffer.from(String(i)), {}, (err) => (err ? reject(err) : resolve()));
      }));
    }
    await Promise.all(acks);
    await ch.waitForConfirms();
    const q = await ch.checkQueue(queue);
    assert.equal(q.messageCount, 50);
    await ch.deleteExchange(ex);
  } finally {
    await conn.close();
  }
});

test('get, get-empty, nack with requeue and the redelivered flag', async () => {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createConfirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    ch.sendToQueue(queue, Buffer.from('only'));
    await ch.waitForConfirms();
    const first = await ch.get(queue, { noAck: false });
    assert.ok(first);
    assert.equal(first.content.toString(), 'only');
    assert.equal(first.fields.messageCount, 0);
    assert.equal(first.fields.redelivered, false);
    ch.nack(first, false, true);
    const again = await ch.get(queue, { noAck: true });
    assert.equal(again.content.toString(), 'only');
    assert.equal(again.fields.redelivered, true);
    assert.equal(await ch.get(queue), false);
  } finally {
    await conn.close();
  }
});

test('passive check of a missing queue rejects with 404 NOT_FOUND', async () => {
  const conn = await amqp.connect(URL);
  try {
    const ch = await conn.createChannel();
    const name = unique('missing');
    const closed = new Promise((resolve) => ch.on('error', resolve));
    await assert.rejects(ch.checkQueue(name), (err) => {
      assert.equal(err.code, 404);
      assert.match(err.message, new RegExp(`NOT_FOUND - no queue '${name}' in vhost '/'`));
      return true;
    });
    await closed;
  } finally {
    await conn.close();
  }
});
