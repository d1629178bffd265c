// eth_getLogs over HTTP goes around ethers' transport (a cold start's ~100 MB body): it must still speak to a
// node behind Basic authentication given in the URL, as ethers does, and refuse an error answer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { JsonRpcProvider } from 'ethers'
import { getLogsChunked } from '../../../src/lib/chain/client.js'

test('credentials in the RPC URL become the Basic header; an error answer throws', async () => {
  const seen: (string | undefined)[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      seen.push(req.headers.authorization)
      const { id, params } = JSON.parse(body) as { id: number; params: { fromBlock: string }[] }
      res.setHeader('content-type', 'application/json')
      if (req.headers.authorization !== `Basic ${Buffer.from('ops:s3cret').toString('base64')}`) return res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32000, message: 'unauthorised' } }))
      const log = { address: '0x5fbdb2315678afecb367f032d93f642f64180aa3', topics: ['0x' + '11'.repeat(32)], data: '0x', blockNumber: params[0]!.fromBlock, logIndex: '0x0', transactionHash: '0x' + '22'.repeat(32), blockHash: '0x' + '33'.repeat(32), transactionIndex: '0x0' }
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: [log, { ...log, logIndex: '0x1', removed: true }] }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as AddressInfo).port
  try {
    const good = new JsonRpcProvider(`http://ops:s3cret@127.0.0.1:${port}`, 31337, { staticNetwork: true })
    const logs = await getLogsChunked(good, { address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', topics: [] }, 5, 10, 24)
    assert.deepEqual(logs.map((l) => [l.blockNumber, l.index]), [[5, 0], [15, 0]], 'two chunks of 10 blocks; removed logs dropped')
    assert.equal(seen[0], `Basic ${Buffer.from('ops:s3cret').toString('base64')}`)
    const bad = new JsonRpcProvider(`http://ops:wrong@127.0.0.1:${port}`, 31337, { staticNetwork: true })
    await assert.rejects(getLogsChunked(bad, { address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', topics: [] }, 0, 10, 5), /unauthorised/)
    good.destroy()
    bad.destroy()
  } finally {
    server.close()
  }
})
