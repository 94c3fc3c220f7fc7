"""Example messages shown in /docs (the integration tests send these and more): a pacs.008, its
pacs.002, and a pacs.028 asking about it."""

PACS008_NORTHBOUND = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">
  <FIToFICstmrCdtTrf>
    <GrpHdr>
      <MsgId>HARBOURHK20260622-000001</MsgId>
      <CreDtTm>2026-06-22T12:00:00+08:00</CreDtTm>
      <NbOfTxs>1</NbOfTxs>
      <SttlmInf>
        <SttlmMtd>CLRG</SttlmMtd>
        <ClrSys>
          <Prtry>FPS</Prtry>
        </ClrSys>
      </SttlmInf>
      <PmtTpInf>
        <LclInstrm>
          <Prtry>CROSS_BORDER_NORTHBOUND</Prtry>
        </LclInstrm>
      </PmtTpInf>
    </GrpHdr>
    <CdtTrfTxInf>
      <PmtId>
        <InstrId>HARBOURHK-INSTR-000001</InstrId>
        <EndToEndId>INV-2026-0622-0001</EndToEndId>
        <UETR>8a562c67-ca16-48ba-b074-65581be6f011</UETR>
      </PmtId>
      <IntrBkSttlmAmt Ccy="HKD">1000.00</IntrBkSttlmAmt>
      <IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>
      <ChrgBr>SLEV</ChrgBr>
      <Dbtr>
        <Nm>CHAN Tai Man</Nm>
        <PstlAdr>
          <TwnNm>Hong Kong</TwnNm>
          <Ctry>HK</Ctry>
        </PstlAdr>
      </Dbtr>
      <DbtrAcct>
        <Id>
          <Othr>
            <Id>HKDEMO0001</Id>
          </Othr>
        </Id>
        <Ccy>HKD</Ccy>
      </DbtrAcct>
      <DbtrAgt>
        <FinInstnId>
          <ClrSysMmbId>
            <MmbId>HARBOURHK</MmbId>
          </ClrSysMmbId>
        </FinInstnId>
      </DbtrAgt>
      <CdtrAgt>
        <FinInstnId>
          <Nm>Mainland bank of the proxy</Nm>
        </FinInstnId>
      </CdtrAgt>
      <Cdtr>
        <Nm>ZHANG Xiao Ming</Nm>
      </Cdtr>
      <CdtrAcct>
        <Id>
          <Othr>
            <Id>NOTPROVIDED</Id>
          </Othr>
        </Id>
        <Prxy>
          <Tp>
            <Cd>TELE</Cd>
          </Tp>
          <Id>+86-13800138000</Id>
        </Prxy>
      </CdtrAcct>
      <Purp>
        <Prtry>FAMILY_SUPPORT</Prtry>
      </Purp>
      <RmtInf>
        <Ustrd>Tuition for June</Ustrd>
      </RmtInf>
    </CdtTrfTxInf>
  </FIToFICstmrCdtTrf>
</Document>
"""

PACS002_ACSC = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10">
  <FIToFIPmtStsRpt>
    <GrpHdr>
      <MsgId>FPSLINK0b7f7c3e3c0a4f5e8a535b7d7d5a</MsgId>
      <CreDtTm>2026-06-22T04:00:00.052Z</CreDtTm>
    </GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>HARBOURHK20260622-000001</OrgnlMsgId>
      <OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId>
    </OrgnlGrpInfAndSts>
    <TxInfAndSts>
      <OrgnlInstrId>HARBOURHK-INSTR-000001</OrgnlInstrId>
      <OrgnlEndToEndId>INV-2026-0622-0001</OrgnlEndToEndId>
      <OrgnlUETR>8a562c67-ca16-48ba-b074-65581be6f011</OrgnlUETR>
      <TxSts>ACSC</TxSts>
      <AccptncDtTm>2026-06-22T04:00:00Z</AccptncDtTm>
      <ClrSysRef>0b7f7c3e3c0a4f5e8a535b7d7d5a9c11</ClrSysRef>
    </TxInfAndSts>
  </FIToFIPmtStsRpt>
</Document>
"""

PACS028_BY_UETR = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.028.001.03">
  <FIToFIPmtStsReq>
    <GrpHdr>
      <MsgId>HARBOURHK20260622-STS-0001</MsgId>
      <CreDtTm>2026-06-22T12:00:05+08:00</CreDtTm>
    </GrpHdr>
    <TxInf>
      <StsReqId>HARBOURHK-STS-0001</StsReqId>
      <OrgnlGrpInf>
        <OrgnlMsgId>HARBOURHK20260622-000001</OrgnlMsgId>
        <OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId>
      </OrgnlGrpInf>
      <OrgnlEndToEndId>INV-2026-0622-0001</OrgnlEndToEndId>
      <OrgnlUETR>8a562c67-ca16-48ba-b074-65581be6f011</OrgnlUETR>
    </TxInf>
  </FIToFIPmtStsReq>
</Document>
"""
