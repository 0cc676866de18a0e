#!/usr/bin/env node
// mount(8)'s helper for type salvo (/sbin/mount.salvo runs it): see lib/cli/mount-helper.ts.
import { runMountHelper } from '../lib/cli/mount-helper.js';

process.exit(await runMountHelper(process.argv.slice(2)));
