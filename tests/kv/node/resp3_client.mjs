// node-redis 5 over RESP3 against one server (weft-kv or redis-server):
// strings, hashes, sets (RESP3 set replies), sorted sets with their scores
// (RESP3 doubles), pub/sub (RESP3 push messages) and MULTI/EXEC. Prints one
// line per step, "step: <JSON of what the client returned>", for
// tests/kv/node/compare.py to compare between the two servers.
//
// Usage: node resp3_client.mjs PORT
//
// node-redis 5 speaks RESP2 unless told otherwise (its default is RESP: 2);
// `RESP: 3` makes it open every connection with HELLO 3, as the clients
// that default to RESP3 do. Sets are mapped to JavaScript Sets and maps to
// Maps (typeMapping), so that a set or map reply is told apart from an
// array in the output, and doubles stay numbers.
import { createClient, RESP_TYPES } from 'redis';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node resp3_client.mjs PORT');
  process.exit(2);
}

// JSON with the RESP3 shapes visible: a Set as {"set": sorted members}, a
// Map as {"map": [[k, v], ...]} in key order (a hash table's order is each
// server's own), Buffers as text, non-finite numbers by name.
function show(value) {
  return JSON.stringify(value, (_key, v) => {
    if (v instanceof Set) return { set: [...v].map(String).sort() };
    if (v instanceof Map) {
      return { map: [...v.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0]))) };
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return `number:${v}`;
    if (v === undefined) return 'undefined';
    return v;
  });
}

const lines = [];
function out(step, value) {
  lines.push(`${step}: ${show(value)}`);
}

const typeMapping = { [RESP_TYPES.SET]: Set, [RESP_TYPES.MAP]: Map };
const client = createClient({ socket: { host: '127.0.0.1', port }, RESP: 3 }).withTypeMapping(
  typeMapping,
);
client.on('error', (e) => {
  console.error(`client error: ${e}`);
  process.exit(1);
});

try {
  await client.connect();
  const hello = await client.hello('3');
  out('hello.proto', hello.get('proto'));
  out('hello.version', hello.get('version'));

  // Strings.
  out('set', await client.set('s', 'hello'));
  out('get', await client.get('s'));
  out('get.missing', await client.get('nosuch'));
  out('set.nx.existing', await client.set('s', 'x', { condition: 'NX' }));
  out('incr', await client.incr('n'));
  out('incrbyfloat', await client.incrByFloat('n', 1.5));
  out('mget', await client.mGet(['s', 'nosuch', 'n']));
  out('append', await client.append('s', ' world'));
  out('strlen', await client.strLen('s'));
  out('getdel', await client.getDel('s'));
  out('exists', await client.exists(['s', 'n']));

  // Hashes: HGETALL is a map in RESP3.
  out('hset', await client.hSet('h', { a: '1', b: '2', c: 'three' }));
  out('hget', await client.hGet('h', 'c'));
  out('hget.missing', await client.hGet('h', 'zz'));
  out('hgetall', await client.hGetAll('h'));
  out('hgetall.missing', await client.hGetAll('nosuch'));
  out('hincrbyfloat', await client.hIncrByFloat('h', 'a', 0.25));
  out('hmget', await client.hmGet('h', ['a', 'zz']));
  out('hkeys', (await client.hKeys('h')).sort());
  out('hrandfield.count', (await client.hRandFieldCount('h', 10)).sort());

  // Sets: SMEMBERS, SINTER, SUNION are sets in RESP3.
  out('sadd', await client.sAdd('s1', ['a', 'b', 'c', '1']));
  out('sadd.more', await client.sAdd('s2', ['b', 'c', 'd']));
  out('smembers', await client.sMembers('s1'));
  out('sinter', await client.sInter(['s1', 's2']));
  out('sunion', await client.sUnion(['s1', 's2']));
  out('sdiff', await client.sDiff(['s1', 's2']));
  out('sismember', await client.sIsMember('s1', 'a'));
  out('smismember', await client.smIsMember('s1', ['a', 'z']));
  out('scard', await client.sCard('s1'));
  out('smembers.missing', await client.sMembers('nosuch'));

  // Sorted sets: scores are RESP3 doubles.
  out(
    'zadd',
    await client.zAdd('z', [
      { score: 1.5, value: 'a' },
      { score: 2, value: 'b' },
      { score: -0.125, value: 'c' },
      { score: Infinity, value: 'top' },
      { score: -Infinity, value: 'bottom' },
    ]),
  );
  out('zscore', await client.zScore('z', 'a'));
  out('zscore.inf', await client.zScore('z', 'top'));
  out('zscore.missing', await client.zScore('z', 'nosuch'));
  out('zincrby', await client.zIncrBy('z', 0.5, 'a'));
  out('zrange', await client.zRange('z', 0, -1));
  out('zrange.withscores', await client.zRangeWithScores('z', 0, -1));
  out('zrevrange.withscores', await client.zRangeWithScores('z', 0, 1, { REV: true }));
  out('zrangebyscore', await client.zRangeByScoreWithScores('z', 0, 3));
  out('zmscore', await client.zmScore('z', ['a', 'nosuch', 'bottom']));
  out('zrank', await client.zRank('z', 'b'));
  out('zcard', await client.zCard('z'));
  out('zpopmin', await client.zPopMin('z'));
  out('zpopmax.count', await client.zPopMaxCount('z', 2));
  out(
    'zrandmember.withscores',
    (await client.zRandMemberCountWithScores('z', 2)).sort((a, b) => a.value.localeCompare(b.value)),
  );
  out('zunion.withscores', await client.zUnionWithScores(['z', 'nosuch']));

  // Raw replies through sendCommand: the RESP3 shapes as they come.
  out('raw.config.get', await client.sendCommand(['CONFIG', 'GET', 'maxmemory']));
  out('raw.zscore', await client.sendCommand(['ZSCORE', 'z', 'b']));
  out('raw.type', await client.sendCommand(['TYPE', 'z']));
  out('raw.error', await client.sendCommand(['INCR', 'h']).catch((e) => `error: ${e.message}`));

  // Pub/sub: the subscriber's connection receives push messages.
  const sub = client.duplicate();
  sub.on('error', (e) => {
    console.error(`subscriber error: ${e}`);
    process.exit(1);
  });
  await sub.connect();
  const received = [];
  let expected = 0;
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const note = (kind) => (message, channel) => {
    received.push([kind, String(channel), String(message)]);
    if (received.length === expected) done();
  };
  await sub.subscribe('news', note('message'));
  await sub.pSubscribe('ne*', note('pmessage'));
  out('pubsub.numsub', await client.pubSubNumSub(['news', 'other']));
  out('pubsub.numpat', await client.pubSubNumPat());
  out('pubsub.channels', (await client.pubSubChannels()).sort());
  expected = 6;
  for (const m of ['one', 'two', 'three']) out(`publish.${m}`, await client.publish('news', m));
  await all;
  out('pubsub.received', received);
  // A subscribed RESP3 connection may still run ordinary commands.
  out('pubsub.sub.get', await sub.get('n'));
  await sub.unsubscribe('news');
  await sub.pUnsubscribe('ne*');
  out('publish.after.unsubscribe', await client.publish('news', 'four'));
  await sub.quit();

  // MULTI/EXEC: the replies of the queued commands, each in its RESP3 shape
  // (a one-field hash and a one-member set: their order is each server's).
  await client.hSet('h1', 'f', 'v');
  await client.sAdd('s3', 'only');
  out(
    'exec',
    await client
      .multi()
      .set('t', '1')
      .incr('t')
      .get('t')
      .hGetAll('h1')
      .sMembers('s3')
      .zScore('z', 'b')
      .exec(),
  );
  // A WATCH that fails makes EXEC answer null: node-redis rejects.
  const other = client.duplicate();
  await other.connect();
  await client.watch('t');
  await other.set('t', 'changed');
  out(
    'exec.watch.aborted',
    await client
      .multi()
      .set('t', 'mine')
      .exec()
      .then(
        (r) => r,
        (e) => `rejected: ${e.name}: ${e.message}`,
      ),
  );
  out('get.after.watch', await client.get('t'));
  await other.quit();
  await client.quit();
} catch (e) {
  console.error(`failed after ${lines.length} steps: ${e.stack || e}`);
  console.log(lines.join('\n'));
  process.exit(1);
}
console.log(lines.join('\n'));
