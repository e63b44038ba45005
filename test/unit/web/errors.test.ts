// The portal's error sentences (web/src/errors.ts): the server's `details.problems` named by the form's labels, no request id in the text.
import test from 'ava';
import { errorSentence, fieldLabel, problemSentence, problemsOf, type FieldLabels, type ServerError } from '../../../web/src/errors.js';

const TOOLBOX: FieldLabels = { 'parameters.source': 'Map to colour', 'parameters.cutoff': 'Cut-off', type: 'Tool' };

/** A 400 as the route's parser answers it (server/http/route.ts): the message is the problems' messages joined. */
function refusal(problems: { field: string; message: string }[], code = 'invalid_request'): ServerError {
  return { status: 400, code, message: problems.map((p) => p.message).join('; '), requestId: 'req-7f3a', details: { problems } };
}

test('a field path becomes the form label, or a readable name made from the path', (t) => {
  t.is(fieldLabel('parameters.source', TOOLBOX), 'Map to colour');
  t.is(fieldLabel('parameters.tileSize'), 'Tile size');
  t.is(fieldLabel('parameters.tissueThreshold'), 'Tissue threshold');
  t.is(fieldLabel('principalInvestigator'), 'Principal investigator');
  t.is(fieldLabel('publications.0.doi'), 'DOI of publication 1');
  t.is(fieldLabel('publications.2.title'), 'Title of publication 3');
  t.is(fieldLabel('publications.1'), 'Publication 2');
  t.is(fieldLabel('parameters.predictions.0', { 'parameters.predictions.*': 'Prediction' }), 'Prediction 1');
  t.is(fieldLabel('layers.1.regions.2.vertices'), 'Vertices of region 3 of layer 2');
  t.is(fieldLabel('parameters.predictions.4.score'), 'Score of prediction 5');
  t.is(fieldLabel('publications.0.doi', { 'publications.*.doi': 'DOI (10.…)' }), 'DOI (10.…) of publication 1');
  t.is(fieldLabel('email'), 'E-mail', 'a common label');
  t.is(fieldLabel('email', { email: 'Your address' }), 'Your address', "the form's own label wins");
  t.is(fieldLabel('slide_id'), 'Slide ID');
});

test('each problem is a sentence that names its field by label, whatever form the message has', (t) => {
  const cases: [string, string, string][] = [
    ['parameters.source', 'parameters.source is missing', 'Map to colour is required.'],
    ['parameters.source', 'parameters.source must be a job that succeeded; job 4 is running', 'Map to colour must be a job that succeeded; job 4 is running.'],
    ['parameters.source', 'parameters.source job 4 has no PNG map to colour', 'Map to colour: job 4 has no PNG map to colour.'],
    ['parameters.cutoff', 'parameters.cutoff must be from 0 to 1', 'Cut-off must be from 0 to 1.'],
    ['parameters.tileSize', 'parameters.tileSize must be at least 1', 'Tile size must be at least 1.'],
    ['parameters.predictions.0.score', 'parameters.predictions.0.score must be from 0 to 1', 'Score of prediction 1 must be from 0 to 1.'],
    ['publications.0.doi', 'doi must be a DOI such as 10.1186/s12911-021-01484-w', 'DOI of publication 1 must be a DOI such as 10.1186/s12911-021-01484-w.'],
    ['publications.0.title', 'publications.0.title is missing', 'Title of publication 1 is required.'],
    ['email', 'e-mail must be an e-mail address', 'E-mail must be an e-mail address.'],
    ['slideId', 'slideId must be a slide id (a positive whole number)', 'Slide must be a slide id (a positive whole number).'],
    ['usedFor', 'usedFor must not be empty', 'What you used the data for must not be empty.'],
    ['type', 'type must be one of tissue-mask, xml-masks, patches, stitch, heatmap', 'Tool must be one of tissue-mask, xml-masks, patches, stitch, heatmap.'],
    ['parameters', 'parameters is missing', 'Parameters is required.'],
    ['parameters.mpp', 'parameters.mpp downsample and mpp exclude each other; give one', 'MPP: downsample and mpp exclude each other; give one.'],
    ['name', 'Invalid input: expected string, received number', 'Name: Invalid input: expected string, received number.'],
    ['body', 'The request body must be a JSON object', 'The request body must be a JSON object.'],
  ];
  for (const [field, message, sentence] of cases) t.is(problemSentence({ field, message }, TOOLBOX), sentence, message);
});

test('an invalid request shows every problem as a sentence, no field path and no request id in the text', (t) => {
  const error = refusal([
    { field: 'parameters.source', message: 'parameters.source is missing' },
    { field: 'parameters.cutoff', message: 'parameters.cutoff must be from 0 to 1' },
  ]);
  const text = errorSentence(error, TOOLBOX);
  t.is(text, 'Map to colour is required. Cut-off must be from 0 to 1.');
  t.false(text.includes('parameters.'));
  t.false(text.includes('req-7f3a'));

  const report = errorSentence(
    refusal([
      { field: 'publications.0.doi', message: 'doi must be a DOI such as 10.1186/s12911-021-01484-w' },
      { field: 'publications.1.title', message: 'title must not be empty' },
    ]),
  );
  t.is(report, 'DOI of publication 1 must be a DOI such as 10.1186/s12911-021-01484-w. Title of publication 2 must not be empty.');
  t.notRegex(report, /publications\.\d/);

  t.is(errorSentence(refusal([{ field: 'page', message: 'page must be a whole number from 1' }], 'invalid_query')), 'Page must be a whole number from 1.');
  t.is(errorSentence(refusal([{ field: 'x', message: 'x is wrong' }, { field: 'x', message: 'x is wrong' }])), 'X is wrong.', 'the same problem once');
});

test('other errors keep their message as a sentence, without the request id; a server failure says what to do', (t) => {
  const base = { requestId: 'c0ffee-42', details: undefined };
  t.is(errorSentence({ ...base, status: 404, code: 'slide_not_found', message: 'No slide 5' }), 'No slide 5.');
  t.is(
    errorSentence({ ...base, status: 413, code: 'job_too_large', message: 'patches: 1878225 grid positions, over the limit of 1000000 per job (queue.maxOutputCount).' }),
    'Patches: 1878225 grid positions, over the limit of 1000000 per job (queue.maxOutputCount).',
  );
  const failure = errorSentence({ ...base, status: 500, code: 'internal_error', message: 'Internal server error; quote request id c0ffee-42 to the operator' });
  t.false(failure.includes('c0ffee-42'));
  t.regex(failure, /^Something went wrong on the server\..*details below\.$/);
  t.is(errorSentence({ ...base, status: 409, code: 'conflict', message: 'Try again; request id c0ffee-42' }), 'Try again.');
  t.is(errorSentence({ ...base, status: 502, code: 'http_error', message: 'The server answered 502 Bad Gateway' }), 'The server answered 502 Bad Gateway.');
  // An invalid request whose problems are not there (a proxy, an older server) falls back to its message.
  t.is(errorSentence({ ...base, status: 400, code: 'invalid_request', message: 'Send JSON {"email", "password"}' }), 'Send JSON {"email", "password"}.');
});

test('problems are read warily', (t) => {
  t.deepEqual(problemsOf(undefined), []);
  t.deepEqual(problemsOf({ problems: 'no' }), []);
  t.deepEqual(problemsOf({ problems: [{ field: 'a', message: 'a is missing' }, { field: 1 }, null] }), [{ field: 'a', message: 'a is missing' }]);
});
