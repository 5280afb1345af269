# Show-BpfProgram lists the compiled instructions of a ruleset, region by region. Compiling needs no privileges:
# nothing here touches the kernel. The module comes from $env:BPFILTER_MODULE (set by build.ps1 Test), or from
# out/Bpfilter after 'dotnet pwsh ./build.ps1 Build'.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force -ErrorAction Stop
    $script:demo = Join-Path $PSScriptRoot '../../samples/demo.yaml'
    $script:lines = @(Import-BpfRuleset -Path $demo | Show-BpfProgram)
}

Describe 'Show-BpfProgram on the demo ruleset' {
    It 'writes one ProgramLine object per instruction' {
        $lines.Count | Should -BeGreaterThan 10
        $lines | ForEach-Object { $_.GetType().FullName } | Select-Object -Unique | Should -Be 'Bpfilter.Engine.Ebpf.ProgramLine'
        $lines | ForEach-Object Deployment | Select-Object -Unique | Should -Be 'demo'
        $lines | ForEach-Object Chain | Select-Object -Unique | Should -Be 'INPUT'
        $indexes = @($lines | ForEach-Object Index)
        $indexes[0] | Should -Be 0
        for ($i = 1; $i -lt $indexes.Count; $i++) { $indexes[$i] | Should -BeGreaterThan $indexes[$i - 1] }
    }

    It 'lists a region per rule, named after the rule, between the prologue and the policy' {
        $regions = @($lines | ForEach-Object Region | Select-Object -Unique)
        $regions[0] | Should -Be 'prologue'
        @($regions | Where-Object { $_ -like 'rule *' }) | Should -Be @('rule 1 drop-blocked-host', 'rule 2 no-telnet', 'rule 3 allow-dns')
        $regions | Should -Contain 'policy'
        [array]::IndexOf($regions, 'rule 3 allow-dns') | Should -BeLessThan ([array]::IndexOf($regions, 'policy'))
    }

    It 'reads like bpftool: indexed lines, the counter map by name, and an exit' {
        $text = ($lines | ForEach-Object Text) -join "`n"
        $text | Should -Match '(?m)^   0: \([0-9a-f]{2}\) '
        $text | Should -Match 'exit'
        $text | Should -Match '\(18\) r1 = map\[c_INPUT\]'
        $text | Should -Match '\(85\) call bpf_map_lookup_elem#1'
        $text | Should -Not -Match 'unknown'
        $lines[-1].Text | Should -Match ': \(95\) exit$'
    }

    It 'shows the text under a header per chain and region in its default view' {
        $shown = Import-BpfRuleset -Path $demo | Show-BpfProgram | Out-String -Width 200
        $shown | Should -Match '; demo / INPUT: rule 1 drop-blocked-host'
        $shown | Should -Match '(?m)^   0: \('
        $shown | Should -Match '\(95\) exit'
    }

    It 'picks one chain with -Chain, and reports a chain that does not exist' {
        $ruleset = Import-BpfRuleset -Path $demo
        @(Show-BpfProgram -Ruleset $ruleset -Chain INPUT).Count | Should -Be $lines.Count
        $missing = @(Show-BpfProgram -Ruleset $ruleset -Chain FORWARD -ErrorVariable bad -ErrorAction SilentlyContinue)
        $missing.Count | Should -Be 0
        $bad[0].FullyQualifiedErrorId | Should -BeLike 'Bpfilter.ChainNotFound,*'
    }

    It 'reports a deployment that does not exist with its stable id' {
        Show-BpfProgram -Name 'no-such-deployment-x' -ErrorVariable bad -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $bad[0].FullyQualifiedErrorId | Should -BeLike 'Bpfilter.*,*'
    }
}
