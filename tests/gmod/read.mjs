// Reads regions through a running htsprep API with the GMOD readers Gosling uses, and prints
// one JSON line: the number of records (or bigWig features) in each region.
//   node read.mjs '{"kind":"bam","url":"http://…/data/d/x","index":"http://…/index/d/x","indexType":"bai","regions":[["chr1",0,1000]]}'
// Regions are 0-based, half-open, as the readers take them.
import { BamFile } from '@gmod/bam'
import { TabixIndexedFile } from '@gmod/tabix'
import { BigWig } from '@gmod/bbi'
import { RemoteFile } from 'generic-filehandle2'

const spec = JSON.parse(process.argv[2])
const fh = url => new RemoteFile(url)
const counts = []

if (spec.kind === 'bam') {
  const index = spec.indexType === 'csi' ? { csiFilehandle: fh(spec.index) } : { baiFilehandle: fh(spec.index) }
  const bam = new BamFile({ bamFilehandle: fh(spec.url), ...index })
  await bam.getHeader()
  for (const [ref, start, end] of spec.regions) {
    counts.push((await bam.getRecordsForRange(ref, start, end)).length)
  }
} else if (spec.kind === 'tabix') {
  const index = spec.indexType === 'csi' ? { csiFilehandle: fh(spec.index) } : { tbiFilehandle: fh(spec.index) }
  const file = new TabixIndexedFile({ filehandle: fh(spec.url), ...index })
  await file.getHeader()
  for (const [ref, start, end] of spec.regions) {
    let n = 0
    await file.getLines(ref, start, end, { lineCallback: () => { n += 1 } })
    counts.push(n)
  }
} else if (spec.kind === 'bigwig') {
  const bw = new BigWig({ filehandle: fh(spec.url) })
  await bw.getHeader()
  for (const [ref, start, end] of spec.regions) {
    counts.push((await bw.getFeatures(ref, start, end)).length)
  }
} else {
  throw new Error(`unknown kind ${spec.kind}`)
}
console.log(JSON.stringify({ counts }))
