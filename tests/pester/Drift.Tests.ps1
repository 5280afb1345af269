# Compare-BpfRuleset through pwsh: silent when the deployment is what the file says, the differing rule when not.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    $script:sandbox = New-TestSandbox -Subnet 10.206.0
    $script:name = "bpft-c$($sandbox.Id)"
    $script:yaml = @"
bpfilter: 1
name: $name
chains:
  - name: INPUT
    hook: tc-ingress
    interface: $($sandbox.RxIf)
    rules:
      - name: no-telnet
        match: { protocol: tcp, destination-port: 23 }
        action: drop
      - name: allow-dns
        match: { protocol: udp, destination-port: 53 }
        action: accept
"@
    Set-Content "$TestDrive/web.yaml" $yaml
    Set-Content "$TestDrive/edited.yaml" ($yaml -replace 'destination-port: 23', 'destination-port: 2323')
    Import-BpfRuleset "$TestDrive/web.yaml" | Publish-BpfProgram -NetworkNamespace $sandbox.Rx | Out-Null
}

AfterAll {
    if ($name -and (Test-Path "/sys/fs/bpf/bpfilter/$name")) { Unpublish-BpfProgram -Name $name -ErrorAction Continue }
    if ($sandbox) { Remove-TestSandbox $sandbox }
}

Describe 'Compare-BpfRuleset' {
    It 'writes nothing when the deployment is what the file says' {
        Import-BpfRuleset "$TestDrive/web.yaml" | Compare-BpfRuleset | Should -BeNullOrEmpty
    }

    It 'writes the rule that differs' {
        $difference = Import-BpfRuleset "$TestDrive/edited.yaml" | Compare-BpfRuleset
        $difference.Kind | Should -Be 'Changed'
        $difference.Rule | Should -Be 'no-telnet'
        $difference.Desired | Should -BeLike '*destination-port 2323*'
        $difference.Deployed | Should -BeLike '*destination-port 23 -> drop'
    }

    It 'shows the differences as a table grouped by deployment' {
        $table = Import-BpfRuleset "$TestDrive/edited.yaml" | Compare-BpfRuleset | Out-String -Width 200
        $table | Should -Match "Deployment: $name"
        $table | Should -Match 'Chain\s+#\s+Rule\s+Kind\s+Deployed\s+Desired'
        $table | Should -Match 'INPUT\s+1\s+no-telnet\s+Changed'
    }

    It 'lists every rule with -IncludeEqual' {
        (Import-BpfRuleset "$TestDrive/web.yaml" | Compare-BpfRuleset -IncludeEqual).Kind | Should -Be @('Same', 'Same')
    }

    It 'reports a deployment that does not exist with a stable id' {
        { Import-BpfRuleset "$TestDrive/web.yaml" | Compare-BpfRuleset -Name bpft-none -ErrorAction Stop } |
            Should -Throw -ErrorId 'Bpfilter.DeploymentNotFound,Bpfilter.Commands.CompareBpfRulesetCommand'
    }
}
