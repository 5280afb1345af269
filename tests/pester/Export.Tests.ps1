# Export-BpfRuleset writes rulesets as YAML that Import-BpfRuleset reads back equal. Nothing here touches the kernel;
# the files live in Pester's TestDrive. The module comes from $env:BPFILTER_MODULE (set by build.ps1 Test), or from
# out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force -ErrorAction Stop
    $script:demo = Join-Path $PSScriptRoot '../../samples/demo.yaml'

    # Every part of the language: a set, a user chain, negation, lists, set references, and verdicts with arguments.
    $script:web = Join-Path $TestDrive 'web.yaml'
    Set-Content -Path $web -Value @'
bpfilter: 1
name: web
sets:
  blocklist: { type: ipv4-net, elements: [203.0.113.0/24, 198.51.100.7] }
chains:
  - name: INPUT
    hook: nf-input
    policy: drop
    rules:
      - { name: ssh, match: { protocol: tcp, destination-port: 22, source: "!10.0.0.0/8" }, action: accept }
      - match: { source: "@blocklist" }
        action: drop
      - match: { protocol: tcp, destination-port: [80, 443, 8000-8080], tcp-flags: syn }
        action: { jump: WEB }
      - match: { protocol: icmp, icmp-type: echo-request, limit: { rate: 5/second, burst: 10 } }
        action: accept
      - action: { log: "IN-DROP: " }
      - action: { reject: tcp-reset }
  - name: WEB
    rules:
      - { match: { in-interface: eth0 }, action: return }
'@

    # Rulesets compare by value, except for the file they were read from.
    function Assert-SameRuleset($Expected, $Actual) {
        $Actual.Name | Should -Be $Expected.Name
        $Actual.Sets.Equals($Expected.Sets) | Should -BeTrue -Because 'the sets read back equal'
        $Actual.Chains.Equals($Expected.Chains) | Should -BeTrue -Because 'the chains read back equal'
        $Actual.UserChains.Equals($Expected.UserChains) | Should -BeTrue -Because 'the user chains read back equal'
    }
}

Describe 'Export-BpfRuleset' {
    It 'writes a file that Import-BpfRuleset reads back into an equal ruleset' {
        $original = Import-BpfRuleset -Path $web
        $out = Join-Path $TestDrive 'web-out.yaml'
        $original | Export-BpfRuleset -Path $out | Should -BeNullOrEmpty
        $again = Import-BpfRuleset -Path $out
        Assert-SameRuleset $original $again
        $again.SourcePath | Should -Be (Resolve-Path $out).Path
        $again.UserChains[0].Name | Should -Be 'WEB'
        $again.Sets[0].Name | Should -Be 'blocklist'
    }

    It 'returns the text without -Path, the same text each time, in UTF-8 without a byte order mark in a file' {
        $text = Import-BpfRuleset -Path $web | Export-BpfRuleset
        $text | Should -BeOfType [string]
        @($text).Count | Should -Be 1
        $text | Should -Match '(?m)^      - match: \{ source: "@blocklist" \}$'
        $text | Should -Match '(?m)^        action: \{ jump: WEB \}$'
        $out = Join-Path $TestDrive 'again.yaml'
        Import-BpfRuleset -Path $web | Export-BpfRuleset -Path $out
        [IO.File]::ReadAllText($out) | Should -BeExactly $text
        (Import-BpfRuleset -Path $out | Export-BpfRuleset) | Should -BeExactly $text
        [IO.File]::ReadAllBytes($out)[0] | Should -Be ([byte][char]'b')
    }

    It 'round-trips the demo sample' {
        $original = Import-BpfRuleset -Path $demo
        $out = Join-Path $TestDrive 'demo.yaml'
        $original | Export-BpfRuleset $out
        Assert-SameRuleset $original (Import-BpfRuleset -Path $out)
    }

    It 'overwrites an existing file, but not with -NoClobber' {
        $out = Join-Path $TestDrive 'existing.yaml'
        Set-Content -Path $out -Value 'old'
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path $out -NoClobber -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed.FullyQualifiedErrorId | Should -Be 'Bpfilter.FileExists,Bpfilter.Commands.ExportBpfRulesetCommand'
        Get-Content -Path $out | Should -Be 'old'
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path $out
        (Import-BpfRuleset -Path $out).Name | Should -Be 'demo'
    }

    It 'overwrites a read-only file only with -Force' {
        $out = Join-Path $TestDrive 'readonly.yaml'
        Set-Content -Path $out -Value 'old'
        (Get-Item $out).IsReadOnly = $true
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path $out -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed.FullyQualifiedErrorId | Should -Be 'Bpfilter.FileReadOnly,Bpfilter.Commands.ExportBpfRulesetCommand'
        Get-Content -Path $out | Should -Be 'old'
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path $out -Force
        (Import-BpfRuleset -Path $out).Name | Should -Be 'demo'
    }

    It 'writes nothing with -WhatIf' {
        $out = Join-Path $TestDrive 'whatif.yaml'
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path $out -WhatIf
        Test-Path $out | Should -BeFalse
    }

    It 'writes nothing when more than one ruleset goes to one file' {
        $out = Join-Path $TestDrive 'two.yaml'
        Import-BpfRuleset -Path $demo, $web | Export-BpfRuleset -Path $out -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed.FullyQualifiedErrorId | Should -Be 'Bpfilter.OneRulesetPerFile,Bpfilter.Commands.ExportBpfRulesetCommand'
        $failed.Exception.Message | Should -Match "'demo', 'web'"
        Test-Path $out | Should -BeFalse
    }

    It 'returns one text per ruleset without -Path' {
        $texts = @(Import-BpfRuleset -Path $demo, $web | Export-BpfRuleset)
        $texts.Count | Should -Be 2
        $texts[0] | Should -Match '(?m)^name: demo$'
        $texts[1] | Should -Match '(?m)^name: web$'
    }

    It 'writes iptables-save text that imports back to the same rules' {
        $yaml = Join-Path $TestDrive 'nf.yaml'
        (Get-Content $demo -Raw) -replace 'hook: xdp', 'hook: nf-input' -replace '(?m)^\s+interface: bpfd1\r?\n', '' | Set-Content $yaml
        $path = Join-Path $TestDrive 'demo.rules'
        Import-BpfRuleset -Path $yaml | Export-BpfRuleset -Format IptablesSave -Path $path
        Get-Content $path -Raw | Should -Match '(?m)^\*filter$'
        $back = Import-BpfRuleset -Path $path -Format IptablesSave -Name demo
        ($back.Chains | Where-Object Name -EQ INPUT).Rules.Name | Should -Be @('drop-blocked-host', 'no-telnet', 'allow-dns')
    }

    It 'refuses what iptables cannot say, with a clear error' {
        $yaml = "bpfilter: 1`nname: x`nchains:`n  - name: INPUT`n    hook: nf-input`n    rules:`n      - { match: { source: '@s' }, action: drop }`nsets:`n  s: { type: ipv4-net, elements: [10.0.0.0/8] }`n"
        Set-Content (Join-Path $TestDrive 'sets.yaml') $yaml
        Import-BpfRuleset (Join-Path $TestDrive 'sets.yaml') | Export-BpfRuleset -Format IptablesSave -ErrorVariable failed -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failed.FullyQualifiedErrorId | Should -BeLike 'Bpfilter.IptablesInexpressible,*'
    }

    It 'refuses a path of another provider' {
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path 'Variable:/x' -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed.FullyQualifiedErrorId | Should -Be 'Bpfilter.NotAFileSystemPath,Bpfilter.Commands.ExportBpfRulesetCommand'
    }

    It 'reports a folder that does not exist' {
        Import-BpfRuleset -Path $demo | Export-BpfRuleset -Path (Join-Path $TestDrive 'no/such/dir/x.yaml') -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed.FullyQualifiedErrorId | Should -Be 'Bpfilter.FileNotWritable,Bpfilter.Commands.ExportBpfRulesetCommand'
    }

    It 'runs the examples of its help as written, in order, with the output shown' {
        # The examples work on ./samples/demo.yaml and write beside it: here a copy, in a folder of the test's own.
        $folder = New-Item -ItemType Directory -Path (Join-Path $TestDrive 'examples')
        New-Item -ItemType Directory -Path (Join-Path $folder 'samples') | Out-Null
        Copy-Item $demo (Join-Path $folder 'samples/demo.yaml')
        $examples = @((Get-Help -Name Export-BpfRuleset -Full).examples.example)
        $examples.Count | Should -BeGreaterThan 2
        $lines = { param($text) @(($text -split "`n" | ForEach-Object TrimEnd) -join "`n").Trim("`n") }
        Push-Location $folder
        try {
            foreach ($example in $examples) {
                # An example is its code, then a blank line and the output it prints.
                $parts = ($example.code -replace "`r", '') -split "`n`n", 2
                $printed = & ([scriptblock]::Create($parts[0])) | Out-String -Width 200
                & $lines $printed | Should -Be (& $lines $parts[1]) -Because "$($example.title) prints what its help shows"
            }
        }
        finally { Pop-Location }
        Get-FileHash (Join-Path $folder 'samples/demo.yaml') | ForEach-Object Hash | Should -Be (Get-FileHash $demo).Hash
    }

    It 'ships the JSON schema of the format beside the manifest' {
        $schema = Join-Path (Split-Path (Get-Module Bpfilter).Path) 'Schema/bpfilter-ruleset.schema.json'
        Test-Path $schema | Should -BeTrue
        (Get-Content -Raw $schema | ConvertFrom-Json).'$id' | Should -Be 'urn:bpfilter:ruleset:v1'
    }
}
