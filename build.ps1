#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds, tests and demonstrates the Bpfilter module.
.DESCRIPTION
    Build  assembles the module folder under out/Bpfilter.
    Test   builds, then runs every xunit and Pester test and ends with one line "N passed, N failed".
    Demo   builds, then publishes samples/demo.yaml in a sandbox of two network namespaces and shows its counters.
    Package builds, then writes the module as a versioned .nupkg into out/packages (Compress-PSResource).
    Bench  builds, then measures (not part of Test; about a quarter of an hour, BPFILTER_BENCH_QUICK=1 for a few
           minutes): packets per second from a generator namespace into a receiver namespace for Bpfilter at four hooks
           against iptables, nftables and reference programs, per-packet program cost by BPF_PROG_TEST_RUN (optimized
           and naive), install and update times, Import-Module time; writes out/bench/<time>/ (results.md, chart.png,
           results.csv, machine.md). Installs iptables, nftables and ethtool when they are missing.
    Clean  removes build output.
    Test and Demo need root (they load eBPF programs and create namespaces); both install what they need.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 Test
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Demo', 'Package', 'Bench', 'Clean')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Set-Location $PSScriptRoot

$ModuleDir = Join-Path $PSScriptRoot 'out/Bpfilter'
$ResultsDir = Join-Path $PSScriptRoot 'out/test-results'

function Invoke-Native([string] $Command, [string[]] $Arguments) {
    & $Command @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Command $($Arguments -join ' ') exited with $LASTEXITCODE" }
}

function Install-Prerequisites {
    # Namespaces and veth pairs come from iproute2; the iptables and differential tests restore and save rules with
    # iptables and ip6tables (and their -legacy forms, which the same package brings) and keep address lists in ipsets;
    # the privilege and error tests drop capabilities with setpriv and hide mounts in a namespace of their own with
    # unshare, mount and umount. A bare machine may lack them.
    $needed = [ordered]@{
        ip = 'iproute2'; 'iptables-restore' = 'iptables'; 'ip6tables-restore' = 'iptables'; ipset = 'ipset'
        setpriv = 'util-linux'; unshare = 'util-linux'; mount = 'mount'; umount = 'mount'
    }
    $missing = @($needed.Keys | Where-Object { -not (Get-Command $_ -CommandType Application -ErrorAction Ignore) })
    if ($missing.Count -eq 0) { return }
    $packages = @($missing | ForEach-Object { $needed[$_] } | Select-Object -Unique)
    if (-not (Get-Command apt-get -ErrorAction Ignore)) { throw "$($missing -join ', ') missing ($($packages -join ', ')), and apt-get is not available to install them" }
    Write-Host "Installing $($packages -join ', ') ..."
    Invoke-Native apt-get @('update', '-qq')
    Invoke-Native apt-get (@('install', '-y', '-qq') + $packages)
}

function Assert-Root([string] $What) {
    if ((id -u) -ne '0') { throw "$What needs root: it loads eBPF programs and creates network namespaces. Run it as root (sudo)." }
}

function Invoke-Build {
    foreach ($project in 'Bpfilter.Loader', 'Bpfilter') {
        Invoke-Native dotnet @('build', "src/$project/$project.csproj", '-c', $Configuration, '--nologo', '-v', 'q', '-clp:NoSummary')
    }
    $bin = Join-Path $PSScriptRoot "src/Bpfilter/bin/$Configuration/net8.0"
    if (Test-Path $ModuleDir) { Remove-Item $ModuleDir -Recurse -Force }
    New-Item -ItemType Directory -Path $ModuleDir | Out-Null
    # Only Bpfilter.dll and its loader sit beside the manifest; the engine and YamlDotNet load from Dependencies/ into a
    # context of their own (see src/Bpfilter.Loader/DependencyIsolation.cs), so other modules' versions never clash with ours.
    $dependencies = New-Item -ItemType Directory -Path (Join-Path $ModuleDir 'Dependencies')
    Copy-Item (Join-Path $bin 'Bpfilter.dll'), (Join-Path $bin 'Bpfilter.Format.ps1xml') $ModuleDir
    Copy-Item (Join-Path $PSScriptRoot "src/Bpfilter.Loader/bin/$Configuration/net8.0/Bpfilter.Loader.dll") $ModuleDir
    Get-ChildItem $bin -Filter *.dll | Where-Object Name -NE 'Bpfilter.dll' | Copy-Item -Destination $dependencies
    Copy-Item Bpfilter.psd1, Bpfilter.Testing.psm1, Bpfilter.Iptables.psm1 $ModuleDir
    Copy-Item en-US $ModuleDir -Recurse
    # The JSON schema of the YAML format, for editors (about_Bpfilter_Rulesets, EDITORS).
    Copy-Item src/Bpfilter/Schema $ModuleDir -Recurse
    Write-Host "Module assembled in $ModuleDir"
}

function Get-TrxCounts([string] $Path) {
    if (-not (Test-Path $Path)) { return $null }
    $counters = ([xml](Get-Content $Path -Raw)).TestRun.ResultSummary.Counters
    [pscustomobject]@{ Passed = [int]$counters.passed; Failed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout }
}

function Invoke-Test {
    Assert-Root 'The test run'
    Install-Prerequisites
    Invoke-Build
    if (Test-Path $ResultsDir) { Remove-Item $ResultsDir -Recurse -Force }
    $passed = 0; $failed = 0

    foreach ($project in 'Bpfilter.Engine.Tests', 'Bpfilter.Module.Tests') {
        $trx = Join-Path $ResultsDir "$project.trx"
        & dotnet test "tests/$project" -c $Configuration --nologo --results-directory $ResultsDir --logger "trx;LogFileName=$project.trx" --logger 'console;verbosity=normal'
        $counts = Get-TrxCounts $trx
        if ($null -eq $counts) { Write-Host "$project produced no results: counted as one failure"; $failed++; continue }
        $passed += $counts.Passed; $failed += $counts.Failed
    }

    Invoke-Native dotnet @('restore', 'tests/pester/Pester.Download.csproj', '--nologo', '-v', 'q')
    $packages = ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
    $pester = Join-Path $packages 'pester/6.2.0/tools/Pester.psd1'
    # A child process keeps Pester and the module out of this session, as a user's shell would be.
    $script = @"
Import-Module '$pester'
`$config = New-PesterConfiguration
`$config.Run.Path = '$(Join-Path $PSScriptRoot 'tests/pester')'
`$config.Run.PassThru = `$true
`$config.Output.Verbosity = 'Detailed'
`$env:BPFILTER_MODULE = '$(Join-Path $ModuleDir 'Bpfilter.psd1')'
`$result = Invoke-Pester -Configuration `$config
'PESTER-COUNTS {0} {1}' -f `$result.PassedCount, (`$result.FailedCount + `$result.FailedBlocksCount + `$result.FailedContainersCount)
"@
    $output = & dotnet pwsh -NoProfile -NonInteractive -Command $script | ForEach-Object { Write-Host $_; $_ }
    $line = $output | Where-Object { $_ -match '^PESTER-COUNTS (\d+) (\d+)$' } | Select-Object -Last 1
    if ($line -match '^PESTER-COUNTS (\d+) (\d+)$') { $passed += [int]$Matches[1]; $failed += [int]$Matches[2] }
    else { Write-Host 'Pester produced no results: counted as one failure'; $failed++ }

    Write-Host "$passed passed, $failed failed"
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Package {
    Invoke-Build
    $packages = Join-Path $PSScriptRoot 'out/packages'
    New-Item -ItemType Directory -Path $packages -Force | Out-Null
    Compress-PSResource -Path $ModuleDir -DestinationPath $packages
    $version = (Import-PowerShellDataFile (Join-Path $ModuleDir 'Bpfilter.psd1')).ModuleVersion
    $package = Get-Item (Join-Path $packages "Bpfilter.$version.nupkg")
    Write-Host ('Package: {0} ({1:N0} bytes)' -f $package.FullName, $package.Length)
}

function Install-BenchPrerequisites {
    # The benchmark compares with iptables (legacy and nft) and nftables, and reads veth counters with ethtool.
    $missing = @(@{ iptables = 'iptables-legacy'; nftables = 'nft'; ethtool = 'ethtool' }.GetEnumerator() |
        Where-Object { -not (Get-Command $_.Value -ErrorAction Ignore) } | ForEach-Object Key)
    if ($missing.Count -eq 0) { return }
    if (-not (Get-Command apt-get -ErrorAction Ignore)) { throw "the benchmark needs $($missing -join ', ') and apt-get is not available to install them" }
    Write-Host "Installing $($missing -join ', ') ..."
    Invoke-Native apt-get @('update', '-qq')
    Invoke-Native apt-get (@('install', '-y', '-qq') + $missing)
}

function Invoke-Bench {
    Assert-Root 'The benchmark'
    Install-Prerequisites
    Install-BenchPrerequisites
    Invoke-Build
    Invoke-Native dotnet @('build', 'tests/Bpfilter.Bench', '-c', 'Release', '--nologo', '-v', 'q', '-clp:NoSummary')
    $dir = Join-Path $PSScriptRoot ('out/bench/' + (Get-Date -Format 'yyyyMMdd-HHmmss'))
    New-Item -ItemType Directory -Path $dir | Out-Null

    # Import time: a fresh pwsh each time, timing only Import-Module (a warm-up run first fills the file cache).
    $manifest = Join-Path $ModuleDir 'Bpfilter.psd1'
    $runs = if ($env:BPFILTER_BENCH_QUICK -in '1', 'true') { 3 } else { 10 }
    $times = foreach ($i in 0..$runs) {
        $ms = & dotnet pwsh -NoProfile -NonInteractive -Command "[int](Measure-Command { Import-Module '$manifest' }).TotalMilliseconds"
        if ($i -gt 0) { [int]$ms }
    }
    # The harness measures the data plane, program cost and control plane and writes the results folder (see its Program.cs).
    Invoke-Native dotnet @((Join-Path $PSScriptRoot 'tests/Bpfilter.Bench/bin/Release/net10.0/Bpfilter.Bench.dll'), $dir, '--import-ms', ($times -join ','))
    Get-Content (Join-Path $dir 'results.md') | Write-Host
    Write-Host "Results in $dir"
}

function Invoke-Demo {
    Assert-Root 'The demo'
    Install-Prerequisites
    Invoke-Build
    & (Join-Path $PSScriptRoot 'samples/demo.ps1') -ModulePath (Join-Path $ModuleDir 'Bpfilter.psd1')
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Package' { Invoke-Package }
    'Bench' { Invoke-Bench }
    'Clean' { Remove-Item out, src/*/bin, src/*/obj, tests/*/bin, tests/*/obj -Recurse -Force -ErrorAction Ignore }
}
