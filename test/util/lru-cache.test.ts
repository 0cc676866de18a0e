import t from 'tap';
import { LruCache } from '../../lib/util/lru-cache.js';

t.test('lru-cache: evicts the least recently used entries to stay within its byte bound', async (t) => {
  const cache = new LruCache<string, number>(100);
  cache.set('a', 1, 40);
  cache.set('b', 2, 40);
  t.equal(cache.get('a'), 1, 'a hit makes a the most recent');
  cache.set('c', 3, 40);
  t.equal(cache.get('b'), undefined, 'b, the least recent, went');
  t.equal(cache.get('a'), 1);
  t.equal(cache.bytes, 80);
  cache.set('a', 5, 10);
  t.equal(cache.bytes, 50, 'replacing an entry accounts its new size');
  cache.set('huge', 4, 101);
  t.equal(cache.get('huge'), undefined, 'an entry larger than the bound is not kept');
  t.equal(cache.bytes, 50, 'and evicts nothing');

  const keeping = new LruCache<string, number>(100, true);
  keeping.set('a', 1, 40);
  keeping.set('huge', 4, 101);
  t.equal(keeping.get('huge'), 4, 'kept when asked, so what is in use is not rebuilt at every request');
  t.same([keeping.size, keeping.bytes], [1, 101], 'alone: every other entry went');
  keeping.set('d', 6, 10);
  t.same([keeping.get('huge'), keeping.get('d'), keeping.bytes], [undefined, 6, 10], 'the next entry pushes it out');
  cache.clear();
  t.equal(cache.size, 0);
});
