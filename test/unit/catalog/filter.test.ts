import test from 'ava';
import { FilterError, formatFilter, parseFilter, withoutFacet, type CatalogFilter } from '../../../server/catalog/filter.js';
import { catalogQuery } from '../../../server/http/schemas/catalog.js';

/** The filter of `GET /api/slides` query parameters, as the route's schema reads them. */
const filterFromQuery = (query: Record<string, string | string[]>) => catalogQuery.parse(query).filter;
/** What the route's schema says is wrong with query parameters. */
function queryProblems(query: Record<string, string | string[]>): string[] {
  const result = catalogQuery.safeParse(query);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

test('an expression parses to facets and text, and formats back to the same string', (t) => {
  const filter = parseFilter('organ=CO,LV;stain=IHC;q=adeno');
  t.deepEqual(filter, { organ: ['CO', 'LV'], stain: ['IHC'], q: 'adeno' });
  t.is(formatFilter(filter), 'organ=CO,LV;stain=IHC;q=adeno');
});

test('the empty expression keeps everything', (t) => {
  t.deepEqual(parseFilter(''), {});
  t.deepEqual(parseFilter('   '), {});
  t.is(formatFilter({}), '');
});

test('formatting is canonical: facet order, spaces dropped, duplicates once, empty lists left out', (t) => {
  const filter = parseFilter(' q = needle  in hay ; dataset=PAIP2019 ; annotationMethod=M ; organ = LV , CO , LV ');
  t.deepEqual(filter, { q: 'needle in hay', dataset: ['PAIP2019'], annotationMethod: ['M'], organ: ['LV', 'CO'] });
  t.is(formatFilter(filter), 'organ=LV,CO;annotationMethod=M;dataset=PAIP2019;q=needle in hay');
  t.is(formatFilter({ organ: [], q: '' }), '');
});

test('reserved characters round-trip through percent-encoding', (t) => {
  const filter: CatalogFilter = { dataset: ['a,b', '50% set', 'x;y', 'k=v'], q: '10%_off; yes, really' };
  const text = formatFilter(filter);
  t.is(text, 'dataset=a%2Cb,50%25 set,x%3By,k=v;q=10%25_off%3B yes, really');
  t.deepEqual(parseFilter(text), filter);
});

test('the query parameters and the expression give the same filter', (t) => {
  const fromQuery = filterFromQuery({
    organ: ['CO', 'LV,PR'],
    stain: 'IHC',
    marker: ' KI67 , ,P53',
    q: '  adeno   carcinoma ',
    page: '2',
    sort: 'name',
  });
  const fromExpression = parseFilter('organ=CO,LV,PR;stain=IHC;marker=KI67,P53;q=adeno carcinoma');
  t.deepEqual(fromQuery, fromExpression);
  t.deepEqual(fromQuery, { organ: ['CO', 'LV', 'PR'], stain: ['IHC'], marker: ['KI67', 'P53'], q: 'adeno carcinoma' });
});

test('empty query parameters, as a blank form sends them, are ignored', (t) => {
  t.deepEqual(filterFromQuery({ organ: '', q: '   ', dataset: [',', ''] }), {});
});

test('a repeated q parameter is refused', (t) => {
  t.deepEqual(queryProblems({ q: ['a', 'b'] }), ['q: q is given more than once; give it once']);
});

const bad: [string, RegExp][] = [
  ['organ', /"organ" is not key=value/],
  ['organ=', /organ has no value/],
  ['organ=CO,,LV', /organ has an empty value in "CO,,LV"/],
  ['organ=CO,', /organ has an empty value/],
  ['organ=CO;;stain=HE', /Clause 2 of the filter is empty/],
  ['organ=CO;', /Clause 2 of the filter is empty/],
  ['tissue=LV', /"tissue" is not a filter key; use organ, histology/],
  ['Organ=LV', /"Organ" is not a filter key/],
  ['organ=CO;organ=LV', /organ is given twice; list its values with commas instead \(organ=A,B\)/],
  ['q=', /q is empty/],
  ['q=a;q=b', /q is given twice/],
  ['dataset=100%', /dataset has a malformed percent-encoding in "100%" \(write % itself as %25\)/],
  ['q=%E0%A4%A', /q has a malformed percent-encoding/],
  ['dataset=a%0Ab', /A dataset value contains a control character/],
  [`dataset=${'x'.repeat(101)}`, /A dataset value is 101 characters long; at most 100 are allowed/],
  [`q=${'y'.repeat(201)}`, /q is 201 characters long; at most 200/],
  [`marker=${Array.from({ length: 101 }, (_, i) => `M${i}`).join(',')}`, /marker lists 101 values; at most 100/],
];

for (const [expression, reason] of bad) {
  test(`"${expression.length > 40 ? `${expression.slice(0, 40)}…` : expression}" is refused with its reason`, (t) => {
    const error = t.throws(() => parseFilter(expression), { instanceOf: FilterError });
    t.regex(error?.message ?? '', reason);
    t.is(error?.status, 400);
  });
}

test('the query parameters are held to the same limits as the expression, with the same words', (t) => {
  for (const expression of [`dataset=${'x'.repeat(101)}`, 'q=a%01b', `q=${'y'.repeat(201)}`, `marker=${Array.from({ length: 101 }, (_, i) => `M${i}`).join(',')}`]) {
    const [key, value] = [expression.slice(0, expression.indexOf('=')), decodeURIComponent(expression.slice(expression.indexOf('=') + 1))];
    const error = t.throws(() => parseFilter(expression), { instanceOf: FilterError });
    t.deepEqual(queryProblems({ [key]: value }), [`${key}: ${error!.message}`], expression);
  }
});

test('a facet can be taken out of a filter without touching the rest', (t) => {
  const filter: CatalogFilter = { organ: ['LV'], stain: ['HE'], q: 'x' };
  t.deepEqual(withoutFacet(filter, 'organ'), { stain: ['HE'], q: 'x' });
  t.deepEqual(filter, { organ: ['LV'], stain: ['HE'], q: 'x' }, 'the original is unchanged');
});
